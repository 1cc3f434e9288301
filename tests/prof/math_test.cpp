// src/prof/math.hpp: the heap profile's own natural log and exp agree with
// glibc's (which this test, unlike the library, may link) to 1e-14
// relative over the ranges the profile uses and beyond, and at the edges
// (subnormal arguments, the ends of exp's range).
#include "prof/math.hpp"

#include <cmath>
#include <cstdint>
#include <limits>

#include "gtest/gtest.h"

namespace {

namespace mi = mgc::internal;

// Relative difference, with glibc's value as the reference.
double rel(double ours, double ref) { return ref == 0 ? std::fabs(ours) : std::fabs((ours - ref) / ref); }

TEST(ProfMath, LogAgreesWithGlibc) {
  // The sampler's arguments: k * 2^-53 for k in [1, 2^53].
  for (std::uint64_t k = 1; k <= (std::uint64_t{1} << 53); k = k * 3 + 1) {
    const double u = static_cast<double>(k) * 0x1.0p-53;
    if (u == 1.0) continue;  // ln 1 = 0: checked below
    EXPECT_LT(rel(mi::log_of(u), std::log(u)), 1e-14) << u;
  }
  // A sweep over many binades, both sides of 1 and of sqrt(2).
  for (double x = 1e-300; x < 1e300; x *= 1.37) EXPECT_LT(rel(mi::log_of(x), std::log(x)), 1e-14) << x;
  for (double x = 0.5; x < 2.0; x += 1.0 / 4096) {
    if (x == 1.0) continue;
    EXPECT_LT(std::fabs(mi::log_of(x) - std::log(x)), 3e-16) << x;  // about an ulp of ln 0.5
  }
  EXPECT_EQ(mi::log_of(1.0), 0.0);
  EXPECT_LT(rel(mi::log_of(2.0), std::log(2.0)), 1e-16);
}

TEST(ProfMath, LogOfSubnormals) {
  const double tiny = std::numeric_limits<double>::denorm_min();
  EXPECT_LT(rel(mi::log_of(tiny), std::log(tiny)), 1e-14);
  for (double x = tiny; x < std::numeric_limits<double>::min(); x *= 7.3)
    EXPECT_LT(rel(mi::log_of(x), std::log(x)), 1e-14) << x;
}

TEST(ProfMath, ExpAgreesWithGlibc) {
  // The pprof scale: e^-(size/rate), size/rate from 2^-40 to 2^40.
  // Below -708 (subnormal results) it answers 0, as documented.
  for (double q = 0x1.0p-40; q < 0x1.0p40; q *= 1.11) {
    if (q > 708)
      EXPECT_EQ(mi::exp_of(-q), 0.0) << -q;
    else
      EXPECT_LT(rel(mi::exp_of(-q), std::exp(-q)), 1e-14) << -q;
  }
  for (double y = -708; y <= 709; y += 0.173) EXPECT_LT(rel(mi::exp_of(y), std::exp(y)), 1e-14) << y;
  EXPECT_EQ(mi::exp_of(0.0), 1.0);
  EXPECT_EQ(mi::exp_of(-1000.0), 0.0);
  EXPECT_TRUE(std::isinf(mi::exp_of(1000.0)));
  EXPECT_GT(mi::exp_of(1000.0), 0.0);
}

TEST(ProfMath, TheScaleFactorMatches) {
  // What pprof.cpp computes from them, for sizes against the default rate.
  for (double size = 8; size < 1e9; size *= 1.9) {
    const double rate = 512 * 1024;
    const double ours = 1 / (1 - mi::exp_of(-size / rate));
    const double ref = 1 / (1 - std::exp(-size / rate));
    EXPECT_LT(rel(ours, ref), 1e-12) << size;
  }
}

}  // namespace
