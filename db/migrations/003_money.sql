-- 003: money (issue 26) - a campaign's currency, minimum order and discount cap, and
-- every amount exact at three decimals (BHD, KWD, OMR, JOD, TND, IQD, LYD have a
-- minor unit of 1/1000). Every statement can run again.
--
-- DECIMAL(15,3): 12 digits before the point and 3 after - the most any currency
-- needs (common/money.h: MONEY_INT_DIGITS_MAX, MONEY_EXP_MAX). Exact, never binary
-- floating point. Widening (12,2) to (15,3) keeps every existing value unchanged
-- (10.00 becomes 10.000); the programs write each value with the decimals of its
-- campaign's currency (a percentage always with two).
ALTER TABLE coupon
    MODIFY COLUMN discount_value DECIMAL(15,3) NOT NULL,
    ADD COLUMN IF NOT EXISTS currency CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NULL
        COMMENT 'ISO 4217 alpha-3; NULL = none (amounts have two decimals)',
    ADD COLUMN IF NOT EXISTS min_order_amount DECIMAL(15,3) NULL
        COMMENT 'an order below it gets no discount; NULL = no minimum',
    ADD COLUMN IF NOT EXISTS max_discount_amount DECIMAL(15,3) NULL
        COMMENT 'PERCENTAGE only: the largest discount; NULL = no cap';
