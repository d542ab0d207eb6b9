# Lua scripts compiled into the binaries as string constants.
LUA_SOURCES = lua/issue.lua lua/rollback.lua lua/restore.lua lua/meta_update.lua lua/redeem.lua \
	lua/restore_checkout.lua
EXTRA_DIST += $(LUA_SOURCES) lua/embed.sh
noinst_LIBRARIES += lua/libluascripts.a
nodist_lua_libluascripts_a_SOURCES = lua/lua_scripts.c
lua_libluascripts_a_SOURCES = lua/lua_scripts.h
BUILT_SOURCES += lua/lua_scripts.c
CLEANFILES += lua/lua_scripts.c
luadir = $(pkgdatadir)/lua
lua_DATA = $(LUA_SOURCES)

lua/lua_scripts.c: $(LUA_SOURCES) $(srcdir)/lua/embed.sh
	$(AM_V_GEN)$(MKDIR_P) lua && $(SHELL) $(srcdir)/lua/embed.sh $@ \
	  lua_issue_script=$(srcdir)/lua/issue.lua \
	  lua_rollback_script=$(srcdir)/lua/rollback.lua \
	  lua_restore_script=$(srcdir)/lua/restore.lua \
	  lua_meta_update_script=$(srcdir)/lua/meta_update.lua \
	  lua_redeem_script=$(srcdir)/lua/redeem.lua \
	  lua_restore_checkout_script=$(srcdir)/lua/restore_checkout.lua
