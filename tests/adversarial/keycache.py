"""RSA-2048 device keys for the load scenario, made fast: every pair of a small pool of
1024-bit primes is a distinct valid 2048-bit modulus (64 primes, from 32 generated keys,
give 2,016 keys in seconds, where generating 2,000 keys takes minutes of this machine). Keys sharing
primes are worthless for secrecy - which is fine, they protect nothing; the server checks
size, exponent and encoding, and verifies real signatures made with them."""

from __future__ import annotations

import itertools
import math

from cryptography.hazmat.primitives.asymmetric import rsa

E = 65537


def _primes() -> tuple[int, int]:
    """The two primes of a fresh OpenSSL RSA-2048 key: each is at least sqrt(2) * 2^1023
    (FIPS 186-4), so the product of any two such primes has exactly 2048 bits."""
    numbers = rsa.generate_private_key(public_exponent=E, key_size=2048).private_numbers()
    return numbers.p, numbers.q


def _private_key(p: int, q: int):
    n = p * q
    d = pow(E, -1, math.lcm(p - 1, q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=d % (p - 1),
        dmq1=d % (q - 1),
        iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(E, n),
    )
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


def key_pairs(count: int) -> list[tuple]:
    """`count` (enc, sig) pairs of distinct RSA-2048 `cryptography` private keys."""
    primes: list[int] = []
    while len(primes) * (len(primes) - 1) // 2 < 2 * count:
        primes.extend(_primes())
    moduli = itertools.combinations(primes, 2)
    keys = [_private_key(p, q) for p, q in itertools.islice(moduli, 2 * count)]
    return list(zip(keys[0::2], keys[1::2], strict=True))
