/* placeholder so the module library is never empty */
int berth_transport_module_anchor;
