-- 004: checkout decided in Redis (issue 26). lua/redeem.lua decides every redeem,
-- hold, release, cancel and lapse of an issuance atomically and numbers them per
-- issuance (1, 2, ...); coupon-consumer (consumer/checkout_apply.c) applies each to
-- the issuance's row in version order, exactly once, with its coupon.redemption
-- outbox event in the same transaction. Every statement can run again.
--
-- checkout_version: the last change applied; a change is applied only onto the
-- version before it, so a redelivered change is a no-op and none is skipped.
-- hold_order_id / hold_expires_at: the order holding the issuance while its payment
-- runs, and when the hold lapses by itself (both NULL = not held). used_at and
-- redeemed_order_id (002) stay the redemption.
ALTER TABLE coupon_issue
    ADD COLUMN IF NOT EXISTS checkout_version BIGINT UNSIGNED NOT NULL DEFAULT 0
        COMMENT 'the last lua/redeem.lua change applied to this row (coupon:{ID}:redeem)',
    ADD COLUMN IF NOT EXISTS hold_order_id    VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    ADD COLUMN IF NOT EXISTS hold_expires_at  DATETIME(3) NULL;
