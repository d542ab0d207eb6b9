#!/usr/bin/python3
"""jwtv_vectors.py - makes the known-answer keys and JWTs of tests/unit/jwtv_vectors.h
(shared by tests/unit/test_jwtv.c and tests/fuzz/fuzz_jwtv.c) and the seed corpus of
tests/fuzz/fuzz_jwtv.c.

How the constants were made: `/usr/bin/python3 tests/unit/jwtv_vectors.py` from the repo
root (Debian's python3 with python3-cryptography 38 and python3-jwt 2.6; a pyenv python3
usually lacks them). It generates FRESH keys (two RSA-2048, one EC P-256, plus an RSA-1024
and an EC P-384 that the JWKS loader must refuse or skip), signs every vector, and rewrites
  - the block between the GENERATED markers in tests/unit/jwtv_vectors.h (public keys,
    tokens; the JWKs built from the keys stay hand-written below the block),
  - tests/fuzz/corpus/fuzz_jwtv/* (one token or document per file).
The private keys live only in this process and are thrown away: no private key is kept
in the repository, and re-running replaces every key and token consistently (RSA-PSS and
ECDSA signatures are randomised, so the output differs from run to run).

Tokens are built by hand (header and payload bytes exactly as written here, so duplicate
members, odd types and broken encodings can be signed validly) and signed with
`cryptography`; one RS256 vector goes through PyJWT as an interoperability check.
A token made from another by one edit (FAMILIES) is written as that token's text in parts
plus the edit, so no text stands twice in the header.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import sys

import jwt  # PyJWT, only for the interoperability vector
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VECTORS = os.path.join(ROOT, "tests/unit/jwtv_vectors.h")
CORPUS = os.path.join(ROOT, "tests/fuzz/corpus/fuzz_jwtv")

NOW = 1767225600  # 2026-01-01T00:00:00Z, the now_s the tests pass
EXP = 4102444800  # 2100-01-01T00:00:00Z
ISS = "https://auth.example.com/"
AUD = "coupon-api"


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def uint_b64u(n):
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def rsa_pub(key):
    nums = key.public_key().public_numbers()
    return '"n":"%s","e":"%s"' % (uint_b64u(nums.n), uint_b64u(nums.e))


def ec_pub(key, size):
    nums = key.public_key().public_numbers()
    crv = {32: "P-256", 48: "P-384"}[size]
    return '"crv":"%s","x":"%s","y":"%s"' % (
        crv, b64u(nums.x.to_bytes(size, "big")), b64u(nums.y.to_bytes(size, "big")))


def sign(alg, key, data):
    if alg == "RS256":
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if alg == "RS384":
        return key.sign(data, padding.PKCS1v15(), hashes.SHA384())
    if alg == "PS256":
        return key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                        hashes.SHA256())
    if alg in ("ES256", "ES256-DER"):
        der = key.sign(data, ec.ECDSA(hashes.SHA256()))
        if alg == "ES256-DER":
            return der
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg == "HS256":
        return hmac.new(key, data, hashlib.sha256).digest()
    raise ValueError(alg)


def compact(header, payload, alg, key):
    """header/payload: dict (compact JSON) or str (exact bytes)."""
    h = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    p = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    signing_input = (b64u(h) + "." + b64u(p)).encode()
    return signing_input.decode() + "." + b64u(sign(alg, key, signing_input))


def claims(**over):
    c = {"iss": ISS, "aud": AUD, "sub": "12345", "iat": NOW - 10, "exp": EXP,
         "scope": "openid profile"}
    for k, v in over.items():
        if v is DROP:
            c.pop(k, None)
        else:
            c[k] = v
    return c


DROP = object()


def main():
    rsa_a = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_b = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_a = ec.generate_private_key(ec.SECP256R1())
    rsa_1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ec_384 = ec.generate_private_key(ec.SECP384R1())

    def hdr(alg, kid, **extra):
        h = {"alg": alg, "typ": "JWT", "kid": kid}
        h.update(extra)
        return h

    A = lambda payload, **kw: compact(hdr("RS256", "rsa-a", **kw), payload, "RS256", rsa_a)
    E = lambda payload: compact(hdr("ES256", "ec-a"), payload, "ES256", ec_a)

    t = {}  # name -> token (order kept)
    t["RS256_VALID"] = A(claims())
    t["ES256_VALID"] = E(claims(sub=777, scope="openid coupon:checkout"))
    t["PS256_VALID"] = compact(hdr("PS256", "rsa-b"), claims(sub="9"), "PS256", rsa_b)
    t["RS256_PYJWT"] = jwt.encode(claims(sub="31337"), rsa_b.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), algorithm="RS256", headers={"kid": "rsa-b"})
    t["PS256_ON_RS256_KEY"] = compact(hdr("PS256", "rsa-a"), claims(), "PS256", rsa_a)
    # scopes
    t["SCOPE_ADMIN"] = A(claims(scope="coupon:admin"))
    t["SCOPE_CHECKOUT"] = A(claims(scope="coupon:checkout"))
    t["SCOPE_BOTH"] = E(claims(scope="openid coupon:checkout profile coupon:admin"))
    t["SCOPE_UNKNOWN"] = A(claims(scope="coupon:adminx  coupon COUPON:ADMIN coupon:read "))
    t["SCOPE_ARRAY"] = A(claims(scope=["coupon:admin"]))
    t["SCOPE_NUMBER"] = A(claims(scope=1))
    # alg none / confusion / key mismatch
    hn = b64u(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa-a"}, separators=(",", ":")))
    pn = b64u(json.dumps(claims(scope="coupon:admin"), separators=(",", ":")))
    t["NONE_UNSIGNED"] = hn + "." + pn + "."
    t["NONE_SIGNED"] = hn + "." + pn + "." + b64u(sign("RS256", rsa_a, (hn + "." + pn).encode()))
    hn2 = b64u('{"alg":"nOnE","kid":"rsa-a"}')
    t["NONE_MIXED_CASE"] = hn2 + "." + pn + "." + b64u(b"x" * 32)
    pem = rsa_a.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    t["HS256_CONFUSION"] = compact(hdr("HS256", "rsa-a"), claims(scope="coupon:admin"),
                                   "HS256", pem)
    t["RS384"] = compact(hdr("RS384", "rsa-b"), claims(), "RS384", rsa_b)
    t["RS256_EC_KID"] = compact(hdr("RS256", "ec-a"), claims(), "RS256", rsa_a)
    t["ES256_RSA_KID"] = compact(hdr("ES256", "rsa-b"), claims(), "ES256", ec_a)
    t["UNKNOWN_KID"] = compact(hdr("RS256", "rsa-z"), claims(), "RS256", rsa_a)
    # time
    t["EXPIRED"] = A(claims(exp=NOW - 61))
    t["EXP_IN_LEEWAY"] = A(claims(exp=NOW - 60))
    t["EXP_FRACTION"] = A(claims(exp=EXP + 0.75))
    t["NBF_FUTURE"] = A(claims(nbf=NOW + 61))
    t["NBF_IN_LEEWAY"] = A(claims(nbf=NOW + 60))
    t["NBF_FRACTION"] = A(claims(nbf=NOW + 60.5))
    t["NO_EXP"] = A(claims(exp=DROP))
    t["EXP_STRING"] = A(claims(exp=str(EXP)))
    t["EXP_NEGATIVE"] = A(claims(exp=-1))
    t["EXP_NULL"] = A(claims(exp=None))
    t["EXP_HUGE_INT"] = A(claims(exp=10**19))
    t["EXP_OVERFLOW_DOUBLE"] = A(json.dumps(claims(exp=1)).replace('"exp": 1', '"exp": 1e999'))
    t["NBF_STRING"] = A(claims(nbf="0"))
    t["IAT_STRING"] = A(claims(iat="0"))
    # issuer / audience
    t["WRONG_ISS"] = A(claims(iss="https://evil.example.com/"))
    t["ISS_NO_SLASH"] = A(claims(iss="https://auth.example.com"))
    t["NO_ISS"] = A(claims(iss=DROP))
    t["ISS_NUMBER"] = A(claims(iss=7))
    t["WRONG_AUD"] = A(claims(aud="coupon-api-2"))
    t["AUD_ARRAY_OK"] = A(claims(aud=["billing", AUD]))
    t["AUD_ARRAY_NO"] = A(claims(aud=["billing", "shop"]))
    t["AUD_ARRAY_EMPTY"] = A(claims(aud=[]))
    t["AUD_ARRAY_NONSTRING"] = A(claims(aud=[1, AUD]))
    t["NO_AUD"] = A(claims(aud=DROP))
    # user claim
    for name, sub in [("SUB_ZERO", "0"), ("SUB_NEG", "-1"), ("SUB_LEADING_ZERO", "01"),
                      ("SUB_OVERFLOW", "9223372036854775808"), ("SUB_FLOAT", 1.5),
                      ("SUB_MISSING", DROP), ("SUB_INT_ZERO", 0), ("SUB_INT_NEG", -5),
                      ("SUB_EMPTY", ""), ("SUB_SPACE", " 1"), ("SUB_PLUS", "+1"),
                      ("SUB_ALPHA", "user-1"), ("SUB_BOOL", True), ("SUB_NULL", None),
                      ("SUB_MAX", "9223372036854775807"), ("SUB_INT_MAX", 9223372036854775807)]:
        t[name] = A(claims(sub=sub))
    t["SUB_INT_OVERFLOW"] = A(json.dumps(claims(sub=1)).replace(
        '"sub": 1', '"sub": 9223372036854775808'))
    t["SUB_FLOAT_ONE"] = A(json.dumps(claims(sub=1)).replace('"sub": 1', '"sub": 1.0'))
    t["CHECKOUT_SERVICE_SUB"] = A(claims(sub="svc-checkout", scope="coupon:checkout"))
    t["ADMIN_NO_SUB"] = E(claims(sub=DROP, scope="coupon:admin"))
    t["ADMIN_WITH_SUB"] = A(claims(sub="5", scope="coupon:admin"))
    # strict JSON of header and payload
    t["DUP_HEADER"] = compact('{"alg":"RS256","kid":"rsa-a","alg":"RS256"}', claims(),
                              "RS256", rsa_a)
    t["DUP_HEADER_ALG_NONE_FIRST"] = compact('{"alg":"none","kid":"rsa-a","alg":"RS256"}',
                                             claims(), "RS256", rsa_a)
    t["DUP_HEADER_ESCAPED"] = compact('{"alg":"RS256","kid":"ec-a","\\u006bid":"rsa-a"}',
                                      claims(), "RS256", rsa_a)
    t["DUP_PAYLOAD"] = A('{"iss":"%s","aud":"%s","sub":"1","exp":%d,"sub":"2"}'
                         % (ISS, AUD, EXP))
    t["CRIT"] = A(claims(), crit=["exp"], exp=EXP)
    t["CRIT_EMPTY"] = A(claims(), crit=[])
    t["HEADER_NO_KID"] = compact({"alg": "RS256", "typ": "JWT"}, claims(), "RS256", rsa_a)
    t["HEADER_KID_NUMBER"] = compact({"alg": "RS256", "kid": 1}, claims(), "RS256", rsa_a)
    t["HEADER_ALG_NUMBER"] = compact({"alg": 256, "kid": "rsa-a"}, claims(), "RS256", rsa_a)
    t["HEADER_NOT_OBJECT"] = compact('["RS256","rsa-a"]', claims(), "RS256", rsa_a)
    t["HEADER_NOT_JSON"] = compact('{"alg":"RS256","kid":"rsa-a"', claims(), "RS256", rsa_a)
    t["HEADER_TRAILING"] = compact('{"alg":"RS256","kid":"rsa-a"}x', claims(), "RS256", rsa_a)
    t["PAYLOAD_NOT_OBJECT"] = A('[1,2]')
    t["PAYLOAD_NOT_JSON"] = A('{"sub":"1",')
    t["PAYLOAD_33_MEMBERS"] = A(claims(**{"c%02d" % i: i for i in range(27)}))
    # encodings and signatures
    h, p, s = t["RS256_VALID"].split(".")
    body = unb64u(p).decode().replace('"12345"', '"12346"')
    t["TAMPERED_PAYLOAD"] = h + "." + b64u(body) + "." + s
    sig = bytearray(unb64u(s))
    sig[100] ^= 0x01
    t["TAMPERED_SIGNATURE"] = h + "." + p + "." + b64u(bytes(sig))
    t["STRIPPED_SIGNATURE"] = h + "." + p + "."
    t["BAD_BASE64_CHAR"] = h + "." + p[:10] + "+" + p[11:] + "." + s
    t["PADDED_HEADER"] = h + "=." + p + "." + s  # len(h) % 4 != 0 for these headers
    last = s[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    t["NONCANONICAL_SIGNATURE"] = h + "." + p + "." + s[:-1] + alphabet[alphabet.index(last) | 1]
    eh, ep, es = t["ES256_VALID"].split(".")
    t["ES256_SIG_65_BYTES"] = eh + "." + ep + "." + b64u(unb64u(es) + b"\x00")
    signing_input = (eh + "." + ep).encode()
    t["ES256_SIG_DER"] = eh + "." + ep + "." + b64u(sign("ES256-DER", ec_a, signing_input))
    es_raw = unb64u(es)
    t["ES256_TAMPERED"] = eh + "." + ep + "." + b64u(bytes([es_raw[0] ^ 0x80]) + es_raw[1:])
    assert len(h) % 4 != 0 and len(s) % 4 == 2

    keys = {
        "RSA_A_PUB": rsa_pub(rsa_a), "RSA_B_PUB": rsa_pub(rsa_b), "EC_A_PUB": ec_pub(ec_a, 32),
        "RSA_1024_PUB": rsa_pub(rsa_1024), "EC_P384_PUB": ec_pub(ec_384, 48),
    }
    replace_block(VECTORS, block(keys, t))
    write_corpus(keys, t, CORPUS)


def c_string(name, text, indent="    "):
    """A C string literal split into chunks (never inside an escape) under 100 columns."""
    esc = lambda c: c.replace("\\", "\\\\").replace('"', '\\"')
    chunks = [esc(text[i:i + 80]) for i in range(0, len(text), 80)] or [""]
    return name + "\n" + "\n".join(indent + '"' + c + '"' for c in chunks)


# base token -> the tokens made from it by editing a few bytes of its text
FAMILIES = {
    "RS256_VALID": ["TAMPERED_PAYLOAD", "TAMPERED_SIGNATURE", "STRIPPED_SIGNATURE",
                    "BAD_BASE64_CHAR", "PADDED_HEADER", "NONCANONICAL_SIGNATURE"],
    "ES256_VALID": ["ES256_SIG_65_BYTES", "ES256_SIG_DER", "ES256_TAMPERED"],
    "NONE_SIGNED": ["NONE_UNSIGNED"],
}


def edit_of(base, derived):
    """(i, mid, j): derived == base[:i] + mid + base[j:], with the longest common ends."""
    i = 0
    while i < min(len(base), len(derived)) and base[i] == derived[i]:
        i += 1
    k = 0
    while (k < min(len(base), len(derived)) - i
           and base[len(base) - 1 - k] == derived[len(derived) - 1 - k]):
        k += 1
    return i, derived[i:len(derived) - k], len(base) - k


def family_parts(name, tokens):
    """The base token cut where its derived tokens differ: [(macro, start, end)], and
    each member's text as a list of macro names and literal strings."""
    base = tokens[name]
    edits = {d: edit_of(base, tokens[d]) for d in FAMILIES[name]}
    cuts = sorted({0, len(base)} | {e[0] for e in edits.values()}
                  | {e[2] for e in edits.values()})
    parts = [("%s_PART%d" % (name, n + 1), a, b)
             for n, (a, b) in enumerate(zip(cuts, cuts[1:]))]
    members = {name: [m for m, _, _ in parts]}
    for d, (i, mid, j) in edits.items():
        items = [m for m, a, b in parts if b <= i]
        if mid:
            items.append('"' + mid + '"')
        items += [m for m, a, b in parts if a >= j]
        members[d] = items
    return parts, members


def c_concat(name, items, indent="    "):
    """A declaration whose initializer is macro names and literals, under 100 columns."""
    words = []
    for item in items:
        if item.startswith('"') and len(item) > 82:
            text = item[1:-1]
            words += ['"' + text[i:i + 80] + '"' for i in range(0, len(text), 80)]
        else:
            words.append(item)
    lines, line = [], indent
    for w in words:
        if line.strip() and len(line) + 1 + len(w) > 96:
            lines.append(line)
            line = indent
        line += (" " if line.strip() else "") + w
    lines.append(line)
    return name + "\n" + "\n".join(lines) + ";"


def block(keys, tokens):
    out = ["/* clang-format off */",
           "#define NOW %d /* 2026-01-01T00:00:00Z */" % NOW,
           "#define EXP %d /* 2100-01-01T00:00:00Z */" % EXP,
           '#define ISS "%s"' % ISS, '#define AUD "%s"' % AUD]
    for k, v in keys.items():
        out.append(c_string("#define %s \\" % k, v).replace('"\n', '" \\\n'))
    family_of = {m: base for base, ms in FAMILIES.items() for m in [base] + ms}
    members = {}
    for k, v in tokens.items():
        base = family_of.get(k)
        if base is not None and base not in members:
            parts, members[base] = family_parts(base, tokens)
            out.append("/* TOK_%s in parts: the tokens made from it by one edit reuse them */"
                       % base)
            for m, a, b in parts:
                out.append(c_string("#define %s \\" % m, tokens[base][a:b])
                           .replace('"\n', '" \\\n'))
        if base is not None:
            out.append(c_concat("static const char TOK_%s[] =" % k, members[base][k]))
        else:
            out.append(c_string("static const char TOK_%s[] =" % k, v) + ";")
    out.append("/* clang-format on */")
    return "\n".join(out) + "\n"


def replace_block(path, text):
    begin = "/* BEGIN GENERATED by tests/unit/jwtv_vectors.py: do not edit by hand */\n"
    end = "/* END GENERATED */\n"
    with open(path) as f:
        src = f.read()
    i, j = src.index(begin) + len(begin), src.index(end)
    with open(path, "w") as f:
        f.write(src[:i] + text + src[j:])


def write_corpus(keys, tokens, corpus):
    os.makedirs(corpus, exist_ok=True)
    for f in os.listdir(corpus):
        os.unlink(os.path.join(corpus, f))
    seeds = ["RS256_VALID", "ES256_VALID", "PS256_VALID", "SCOPE_BOTH", "ADMIN_NO_SUB",
             "NONE_UNSIGNED", "NONE_SIGNED", "HS256_CONFUSION", "RS256_EC_KID", "EXPIRED",
             "NBF_FUTURE", "WRONG_AUD", "AUD_ARRAY_OK", "UNKNOWN_KID", "TAMPERED_PAYLOAD",
             "BAD_BASE64_CHAR", "PADDED_HEADER", "DUP_HEADER", "DUP_PAYLOAD", "CRIT",
             "SUB_OVERFLOW", "ES256_SIG_65_BYTES", "NONCANONICAL_SIGNATURE"]
    for name in seeds:
        with open(os.path.join(corpus, name.lower()), "w") as f:
            f.write(tokens[name])
    # regression: cjose_jws_import() aborts on '=' inside a part; jwtv must refuse it first
    h, p, s = tokens["RS256_VALID"].split(".")
    with open(os.path.join(corpus, "equals_sign_inside_payload"), "w") as f:
        f.write(h + "." + p[:1] + "=" + p[1:] + "." + s)
    # Inputs starting with '{': the harness parses them as a JWKS and signs them as a payload.
    docs = {
        "jwks_all": '{"keys":[{"kty":"RSA","kid":"rsa-a","use":"sig","alg":"RS256",%s},'
                    '{"kty":"EC","kid":"ec-a",%s}]}' % (keys["RSA_A_PUB"], keys["EC_A_PUB"]),
        "jwks_oct": '{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}',
        "payload_valid": json.dumps(claims(sub="8"), separators=(",", ":")),
        "payload_checkout": json.dumps(claims(sub="svc", scope="coupon:checkout"),
                                       separators=(",", ":")),
        "payload_bad_user": json.dumps(claims(sub="01"), separators=(",", ":")),
        # regression: '=' inside an EC coordinate made cjose's base64url decoder abort()
        "jwks_ec_x_equals_sign": '{"keys":[{"kty":"EC","kid":"ec-a",%s}]}'
                                 % re.sub(r'.(.)(","y")', r'=\1\2', keys["EC_A_PUB"], count=1),
    }
    for name, text in docs.items():
        with open(os.path.join(corpus, name), "w") as f:
            f.write(text)


if __name__ == "__main__":
    sys.exit(main())
