// Progress reporter (rate, ETA, bar vs plain lines, throttling) and the Ctrl-C flag.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <sstream>

#include "stemtwin/core/progress.hpp"

using namespace stemtwin;

TEST(Progress, RateAndEtaFromAFakeClock) {
  double now = 100;
  std::ostringstream out;
  ProgressReporter p(100, out, false, 5.0, [&] { return now; });
  p.start(20);  // resumed: 20 already done, not counted in the rate
  EXPECT_EQ(p.rate(), 0);
  EXPECT_TRUE(std::isinf(p.eta_seconds()));
  now = 110;
  p.update(40);  // 20 samples in 10 s
  EXPECT_DOUBLE_EQ(p.rate(), 2.0);
  EXPECT_DOUBLE_EQ(p.eta_seconds(), 30.0);  // 60 left at 2/s
  EXPECT_EQ(p.status(), "40/100 (40.0%) 2.00 samples/s ETA 30 s");
  now = 112;
  p.update(44);  // within the 5 s interval: no line
  now = 116;
  p.update(52);
  p.finish();
  const std::string s = out.str();
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 3) << s;  // 40, 52, final
  EXPECT_NE(s.find("progress: 40/100"), std::string::npos) << s;
  EXPECT_NE(s.find("progress: 52/100"), std::string::npos) << s;
  EXPECT_EQ(s.find("44/100"), std::string::npos) << s;
  EXPECT_NE(s.find(" done\n"), std::string::npos) << s;
  EXPECT_EQ(s.find('\r'), std::string::npos);
}

TEST(Progress, SlowSamplesAndLongEtas) {
  double now = 0;
  std::ostringstream out;
  ProgressReporter p(1000, out, false, 1.0, [&] { return now; });
  p.start();
  now = 40;
  p.update(2);  // 20 s per sample, 998 left → 19960 s
  EXPECT_EQ(p.status(), "2/1000 (0.2%) 20.0 s/sample ETA 5 h 32 min");
  EXPECT_EQ(format_duration(42), "42 s");
  EXPECT_EQ(format_duration(200), "3 min 20 s");
}

TEST(Progress, TerminalBarRewritesOneLine) {
  double now = 0;
  std::ostringstream out;
  ProgressReporter p(10, out, true, 5.0, [&] { return now; });
  p.start();
  for (int i = 1; i <= 10; ++i) {
    now += 1;
    p.update(static_cast<std::size_t>(i));
  }
  p.finish();
  const std::string s = out.str();
  EXPECT_EQ(std::count(s.begin(), s.end(), '\r'), 11);
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 1);
  EXPECT_NE(s.find("[##############################] 10/10 (100.0%)"), std::string::npos) << s;
}

TEST(Progress, SigintSetsTheFlagOnce) {
  install_interrupt_handler();
  EXPECT_FALSE(interrupt_requested());
  std::raise(SIGINT);  // the handler sets the flag and restores the default action
  EXPECT_TRUE(interrupt_requested());
  clear_interrupt();
  EXPECT_FALSE(interrupt_requested());
  request_interrupt();
  EXPECT_TRUE(interrupt_requested());
  clear_interrupt();
  EXPECT_EQ(std::signal(SIGINT, SIG_DFL), SIG_DFL);  // a second Ctrl-C would kill
}
