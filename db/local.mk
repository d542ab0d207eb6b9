# Versioned schema migrations, installed for scripts/migrate and operators.
migrationsdir = $(pkgdatadir)/migrations
dist_migrations_DATA = db/migrations/001_init.sql db/migrations/002_redemption.sql \
	db/migrations/003_money.sql db/migrations/004_checkout.sql \
	db/migrations/005_webhooks.sql
