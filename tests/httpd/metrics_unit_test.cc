// The Prometheus text format as regfs writes it, checked by hand and by Prometheus' own
// parser (promtool, from Debian's prometheus package, when installed).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "observability/metrics.h"

namespace regfs::httpd {
namespace {

TEST(Metrics, CountersGaugesAndHistogramsRenderInTheTextFormat) {
  Metrics m;
  auto& requests = m.AddCounter("test_requests_total", "Requests.", {"method", "code"});
  requests.With({"GET", "200"}).Add();
  requests.With({"GET", "200"}).Add(2);
  requests.With({"PUT", "201"}).Add();
  m.AddGauge("test_in_flight", "Now.").With({}).Set(3);
  auto& h = m.AddHistogram("test_seconds", "Latency.", {"op"}, {0.1, 1}).With({"stat"});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(5);
  std::string text = m.Render();
  EXPECT_NE(text.find("# TYPE test_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("test_requests_total{method=\"GET\",code=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("test_requests_total{method=\"PUT\",code=\"201\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("test_in_flight 3\n"), std::string::npos);
  EXPECT_NE(text.find("test_seconds_bucket{op=\"stat\",le=\"0.10000000000000001\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("test_seconds_bucket{op=\"stat\",le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("test_seconds_bucket{op=\"stat\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("test_seconds_sum{op=\"stat\"} 5.5499999999999998\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("test_seconds_count{op=\"stat\"} 3\n"), std::string::npos);
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  Metrics m;
  m.AddCounter("test_total", "Help with \\ and\nnewline.", {"path"})
      .With({"a\"b\\c\nd"})
      .Add();
  std::string text = m.Render();
  EXPECT_NE(text.find("# HELP test_total Help with \\\\ and\\nnewline.\n"), std::string::npos);
  EXPECT_NE(text.find("test_total{path=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos) << text;
}

TEST(Metrics, ValuesAreWrittenSoTheyReadBack) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(12345678901234), "12345678901234");
  EXPECT_EQ(FormatMetricValue(0.25), "0.25");
  EXPECT_EQ(FormatMetricValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatMetricValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatMetricValue(0.0 / 0.0), "NaN");
}

TEST(Metrics, CountersNeverGoDownAndConcurrentAddsAllCount) {
  Metrics m;
  auto& c = m.AddCounter("test_total", "x").With({});
  c.Add(-5);
  EXPECT_EQ(c.value(), 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) c.Add();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000);
}

TEST(Metrics, ComputedSamplesAreReadAtEachScrape) {
  Metrics m;
  int n = 1;
  m.AddComputed("test_queue", "Backlog.", {"endpoint"},
                [&n] { return std::vector<Sample>{{{"a"}, static_cast<double>(n)}}; });
  EXPECT_NE(m.Render().find("test_queue{endpoint=\"a\"} 1\n"), std::string::npos);
  n = 7;
  EXPECT_NE(m.Render().find("test_queue{endpoint=\"a\"} 7\n"), std::string::npos);
}

// promtool check metrics reads the exposition with Prometheus' parser: a parse error fails
// it ("error while linting: ..."); lint findings about names alone are printed without it.
TEST(Metrics, PrometheusOwnParserReadsTheOutput) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool (Debian package prometheus) is not installed";
  }
  Metrics m;
  m.AddCounter("regfs_test_requests_total", "Requests \"quoted\".", {"path"})
      .With({"/v2/a\"b\\c\nd"})
      .Add(3);
  m.AddGauge("regfs_test_up", "Up.").With({}).Set(1);
  m.AddHistogram("regfs_test_seconds", "Latency.", {"op"}, Metrics::LatencyBounds())
      .With({"stat"})
      .Observe(0.3);
  m.AddComputed("regfs_test_items", "Items.", {"kind"},
                [] { return std::vector<Sample>{{{"x"}, 0.5}, {{"y"}, 1.0 / 0.0}}; });
  const std::string file = ::testing::TempDir() + "/metrics.txt";
  std::ofstream(file) << m.Render();
  std::string command = "promtool check metrics < " + file + " 2>&1";
  FILE* p = ::popen(command.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) output.append(buf, n);
  int status = ::pclose(p);
  EXPECT_EQ(output.find("error while linting"), std::string::npos) << output;
  EXPECT_EQ(status, 0) << output;
}

}  // namespace
}  // namespace regfs::httpd
