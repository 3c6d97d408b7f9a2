/*
 * Copyright (C) ngx_edge_orch_module authors
 */


#ifndef _NGX_SHIM_H_INCLUDED_
#define _NGX_SHIM_H_INCLUDED_


void ngx_shim_pool_reset(void);


#endif /* _NGX_SHIM_H_INCLUDED_ */
