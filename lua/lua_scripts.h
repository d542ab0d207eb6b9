/*
 * lua_scripts.h - the Redis Lua scripts of the lua/ folder, embedded at build time by
 * lua/embed.sh (no file lookup at run time). Each is loaded with SCRIPT LOAD and
 * run with EVALSHA; see the comment at the top of each .lua file for its keys,
 * arguments and replies.
 */
#ifndef COUPON_LUA_SCRIPTS_H
#define COUPON_LUA_SCRIPTS_H

extern const char lua_issue_script[];            /* lua/issue.lua */
extern const char lua_rollback_script[];         /* lua/rollback.lua */
extern const char lua_restore_script[];          /* lua/restore.lua */
extern const char lua_meta_update_script[];      /* lua/meta_update.lua */
extern const char lua_redeem_script[];           /* lua/redeem.lua */
extern const char lua_restore_checkout_script[]; /* lua/restore_checkout.lua */

#endif
