-- 002: redemption (issue 13) - a code per issuance, validity after issuance,
-- redeem exactly once / cancel, and the transactional outbox of downstream events.
-- Every statement can run again (IF NOT EXISTS): scripts/migrate does not record a
-- file that failed half way.

-- A campaign's validity after issuance (both optional; both given: the earlier wins).
-- Set at creation, never changed afterwards: an issuance's usable_until is computed
-- once, by the consumer, when it persists the row.
ALTER TABLE coupon
    ADD COLUMN IF NOT EXISTS usable_days  INT UNSIGNED NULL
        COMMENT 'an issuance is usable this many days after issued_at; NULL = no limit',
    ADD COLUMN IF NOT EXISTS usable_until DATETIME(3)  NULL
        COMMENT 'no issuance is usable after this instant; NULL = no limit';

-- used_at (from 001, never written before) is the redemption time: redeemedAt.
-- redeemed_order_id is the order that redeemed it; both NULL = not redeemed.
-- code: 12 Crockford base32 characters, HMAC of (coupon, user, sequence) under
-- code_secret (common/issuecode.h). Indexed, deliberately not UNIQUE: a 60-bit MAC
-- collides with probability ~N^2/2^61, and a UNIQUE violation would stop the
-- consumer on an event it can never persist; redemption by code refuses a code that
-- two rows share instead. NULL for rows persisted before this migration.
ALTER TABLE coupon_issue
    ADD COLUMN IF NOT EXISTS code              CHAR(12) CHARACTER SET ascii COLLATE ascii_bin NULL,
    ADD COLUMN IF NOT EXISTS usable_until      DATETIME(3) NULL
        COMMENT 'MIN(issued_at + coupon.usable_days, coupon.usable_until); NULL = no limit',
    ADD COLUMN IF NOT EXISTS redeemed_order_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    ADD KEY IF NOT EXISTS ix_coupon_issue_code (code);

-- Downstream events, written in the transaction of the state change they announce
-- (the consumer's batch for coupon.issued, a redemption or its cancellation for
-- coupon.redemption) and relayed to Kafka by coupon-consumer (consumer/relay.c):
-- rows are read in id order, published (idempotent producer, acks=all) with
-- key msg_key and the id as the event id, and deleted once the broker acknowledged
-- them. At least once: a relay killed between the ack and the delete publishes the
-- rows again; consumers dedupe by the event id.
CREATE TABLE IF NOT EXISTS event_outbox (
    id          BIGINT UNSIGNED  NOT NULL AUTO_INCREMENT,
    topic       VARCHAR(64)      CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    msg_key     VARBINARY(64)    NOT NULL,
    payload     VARBINARY(1024)  NOT NULL,
    created_at  DATETIME(3)      NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
