// The two functions of libm the heap profile needs, natural log and exp,
// written here so that libmallocgc and the Boehm face's libgc.so.1 do not
// need libm: a C program that does not load libm itself (chase, mmv,
// debfoster) would otherwise map it for these two calls, about 0.5 MiB of
// resident memory that Boehm's library does not cost.
//
// Both reduce the argument by powers of two and sum a short series; they
// agree with glibc's to about 1e-15 relative over their ranges
// (tests/prof/math_test.cpp), more than sampling distances and pprof's
// scale factors need. Owns nothing; touches nothing.
#pragma once

#include <bit>
#include <cstdint>

namespace mgc::internal {

inline constexpr double kLn2Hi = 0x1.62e42fefa3800p-1;   // ln 2, high bits: k * kLn2Hi is exact for |k| < 2^11
inline constexpr double kLn2Lo = 0x1.ef35793c76730p-45;  // ln 2 - kLn2Hi

// ln x for finite x > 0 (subnormal included); callers never pass others.
inline double log_of(double x) {
  std::uint64_t bits = std::bit_cast<std::uint64_t>(x);
  int e = static_cast<int>((bits >> 52) & 0x7ff);
  if (e == 0) {  // subnormal: scaled into the normal range, exactly
    bits = std::bit_cast<std::uint64_t>(x * 0x1.0p54);
    e = static_cast<int>((bits >> 52) & 0x7ff) - 54;
  }
  e -= 1023;
  // x = 2^e * m, m in [sqrt(1/2), sqrt(2)).
  double m = std::bit_cast<double>((bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
  if (m > 0x1.6a09e667f3bcdp+0) {
    m *= 0.5;
    e++;
  }
  // ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), |s| <= 0.172: the
  // terms past s^23 are below 2^-58 of the sum.
  const double s = (m - 1) / (m + 1);
  const double s2 = s * s;
  double p = 1.0 / 25;
  for (int k = 23; k >= 1; k -= 2) p = p * s2 + 1.0 / k;
  return e * kLn2Hi + (e * kLn2Lo + 2 * s * p);
}

// e^y; 0 below -708 and +infinity above 709 (the ends of the normal
// range: the profile only asks for e^-(size/rate) in (0, 1]).
inline double exp_of(double y) {
  if (y < -708) return 0;
  if (y > 709) return std::bit_cast<double>(0x7ff0000000000000ull);
  // y = k ln 2 + r, |r| <= ln 2 / 2; e^y = 2^k e^r.
  const double kf = y * 0x1.71547652b82fep+0 + (y < 0 ? -0.5 : 0.5);
  const int k = static_cast<int>(kf);  // rounds toward zero: the nearest integer to y / ln 2
  const double r = (y - k * kLn2Hi) - k * kLn2Lo;
  // Taylor series to r^17/17!: the rest is below 2^-60 for |r| <= 0.35.
  double t = 1;
  for (int n = 17; n >= 1; n--) t = 1 + t * r / n;
  // 2^k as a double (k in [-1022, 1023] here).
  const double two_k = std::bit_cast<double>(static_cast<std::uint64_t>(k + 1023) << 52);
  return t * two_k;
}

}  // namespace mgc::internal
