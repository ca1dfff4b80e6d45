/* placeholder so the module library is never empty */
int berth_run_module_anchor;
