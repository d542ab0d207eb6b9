#include "first.h"

#include "cp_err.h"

const char *cp_strerror(int err)
{
    switch (err) {
    case CP_OK: return "ok";
    case CP_ERR_NOMEM: return "out of memory";
    case CP_ERR_INVALID: return "invalid";
    case CP_ERR_NOT_FOUND: return "not found";
    case CP_ERR_CONFLICT: return "conflict";
    case CP_ERR_UNAVAILABLE: return "unavailable";
    case CP_ERR_TIMEOUT: return "timeout";
    case CP_ERR_LIMIT: return "limit exceeded";
    case CP_ERR_AMBIGUOUS: return "ambiguous outcome";
    case CP_ERR_SYSTEM: return "system error";
    case CP_ERR_INTERNAL: return "internal error";
    case CP_ERR_NO_COUPON: return "no such coupon";
    case CP_ERR_NO_ISSUANCE: return "no such issuance";
    case CP_ERR_DUPLICATE: return "already issued";
    case CP_ERR_SOLD_OUT: return "sold out";
    case CP_ERR_NOT_STARTED: return "not started";
    case CP_ERR_ENDED: return "ended";
    case CP_ERR_BELOW_ISSUED: return "below issued";
    case CP_ERR_MEDIA_TYPE: return "unsupported media type";
    case CP_ERR_UNAUTHORIZED: return "unauthorized";
    case CP_ERR_FORBIDDEN: return "forbidden";
    case CP_ERR_METHOD: return "method not allowed";
    case CP_ERR_URI_TOO_LONG: return "uri too long";
    case CP_ERR_NO_CODE: return "no such code";
    case CP_ERR_ALREADY_REDEEMED: return "already redeemed";
    case CP_ERR_ORDER_MISMATCH: return "order mismatch";
    case CP_ERR_NOT_PERSISTED: return "not yet persisted";
    case CP_ERR_EXPIRED: return "expired";
    case CP_ERR_NOT_REPLICATED: return "not replicated";
    case CP_ERR_RATE_LIMITED: return "rate limited";
    case CP_ERR_BAD_AMOUNT: return "bad amount";
    case CP_ERR_BELOW_MINIMUM: return "below minimum";
    case CP_ERR_URL_REFUSED: return "url refused";
    default: return "unknown error";
    }
}
