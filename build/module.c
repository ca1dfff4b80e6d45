/* placeholder so the module library is never empty */
int berth_build_module_anchor;
