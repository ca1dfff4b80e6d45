/* placeholder so the module library is never empty */
int berth_storage_module_anchor;
