-- 001: coupons and their issuances. Times are UTC (the server runs with
-- time_zone='+00:00' and the programs set it per session). Applied by
-- scripts/migrate, which records each file in schema_migrations.
CREATE TABLE IF NOT EXISTS coupon (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    title            VARCHAR(200)    NOT NULL,
    code             VARCHAR(64)     NULL,
    coupon_type      ENUM('FIRST_COME_FIRST_SERVED','GENERAL') NOT NULL,
    discount_type    ENUM('PERCENTAGE','AMOUNT') NOT NULL,
    discount_value   DECIMAL(12,2)   NOT NULL,
    start_at         DATETIME(3)     NOT NULL,
    end_at           DATETIME(3)     NOT NULL,
    total_quantity   BIGINT UNSIGNED NULL COMMENT 'NULL = unlimited',
    issued_quantity  BIGINT UNSIGNED NOT NULL DEFAULT 0,
    description      VARCHAR(2000)   NULL,
    created_at       DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at       DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
                                     ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    UNIQUE KEY uq_coupon_code (code),
    CONSTRAINT ck_coupon_window CHECK (start_at < end_at),
    CONSTRAINT ck_coupon_discount CHECK (discount_value > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS coupon_issue (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    coupon_id     BIGINT UNSIGNED NOT NULL,
    user_id       BIGINT UNSIGNED NOT NULL,
    sequence      BIGINT UNSIGNED NOT NULL,
    event_id      CHAR(32)        NOT NULL,
    issued_at     DATETIME(3)     NOT NULL,
    persisted_at  DATETIME(3)     NOT NULL,
    used_at       DATETIME(3)     NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_coupon_issue_coupon_user (coupon_id, user_id),
    KEY ix_coupon_issue_user (user_id, coupon_id),
    CONSTRAINT fk_coupon_issue_coupon FOREIGN KEY (coupon_id) REFERENCES coupon (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
