-- 005: signed webhooks (issue 27) - the endpoints an admin registered and one delivery
-- row per (endpoint, event). Every statement can run again.
--
-- A delivery is created once: UNIQUE (endpoint_id, event_id), written with INSERT
-- IGNORE by the dispatcher (consumer/dispatch.c) before it commits the Kafka offsets
-- of the event. pending -> delivered, or -> failed once give_up_at passed (kept,
-- listed, redeliverable: back to pending). Per-coupon order per endpoint: only the
-- pending delivery with the smallest event_id of an (endpoint, coupon) is due.
CREATE TABLE IF NOT EXISTS webhook_endpoint (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    url              VARCHAR(512) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    events           SET('coupon.issued', 'coupon.redeemed', 'coupon.redemption_cancelled',
                         'coupon.held', 'coupon.hold_released') NOT NULL,
    secret           VARCHAR(100) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    previous_secret  VARCHAR(100) CHARACTER SET ascii COLLATE ascii_bin NULL
        COMMENT 'the secret before the last rotation, also signed with until previous_until',
    previous_until   DATETIME(3)  NULL,
    enabled          TINYINT(1)   NOT NULL DEFAULT 1,
    created_at       DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    disabled_at      DATETIME(3)  NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS webhook_delivery (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    endpoint_id      BIGINT UNSIGNED NOT NULL,
    event_id         BIGINT UNSIGNED NOT NULL COMMENT 'the outbox id: webhook-id',
    event_type       VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    coupon_id        BIGINT       NOT NULL,
    payload          VARBINARY(2048) NOT NULL,
    state            ENUM('pending', 'delivered', 'failed') NOT NULL DEFAULT 'pending',
    attempts         INT UNSIGNED NOT NULL DEFAULT 0,
    next_attempt_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    give_up_at       DATETIME(3)  NOT NULL,
    last_status      INT          NULL COMMENT 'HTTP status of the last attempt; NULL: none',
    last_error       VARCHAR(255) NULL,
    created_at       DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    delivered_at     DATETIME(3)  NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_delivery_event (endpoint_id, event_id),
    KEY ix_delivery_order (state, endpoint_id, coupon_id, event_id),
    KEY ix_delivery_due (state, next_attempt_at),
    CONSTRAINT fk_delivery_endpoint FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoint (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
