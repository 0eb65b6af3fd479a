// Metrics in the Prometheus text exposition format (version 0.0.4): counters, gauges and
// histograms with labels, written by the hot path without locks once a series exists, and
// rendered on each scrape.
//
// No packaged C++ Prometheus client is in Debian 12, and the format is small: this module
// is the whole of it. Its output is checked against Prometheus' own parser (promtool) in
// the tests.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace regfs::httpd {

using LabelValues = std::vector<std::string>;

// One monotonically increasing series. Thread-safe.
class Counter {
 public:
  void Add(double v = 1);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// One series that goes up and down. Thread-safe.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// One series of observations counted into fixed upper bounds. Thread-safe.
class Histogram {
 public:
  // REQUIRES: bounds strictly increasing; +Inf is implied.
  explicit Histogram(const std::vector<double>& bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then the +Inf bucket
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// A metric and its series, one per combination of label values.
template <typename Series>
class Family {
 public:
  // The series for `values` (one per label name, in order), created on first use. The
  // reference stays valid as long as the family: callers on hot paths keep it.
  Series& With(const LabelValues& values);

 private:
  friend class Metrics;
  Family(std::string name, std::string help, std::vector<std::string> labels,
         std::function<std::unique_ptr<Series>()> make);
  // Every series with its label values, for rendering.
  std::vector<std::pair<LabelValues, const Series*>> Snapshot() const;

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> labels_;
  std::function<std::unique_ptr<Series>()> make_;
  mutable std::mutex mu_;
  std::map<LabelValues, std::unique_ptr<Series>> series_;
};

// Values computed when scraped (a queue's length, the time of the last run): each call
// returns the current series.
struct Sample {
  LabelValues labels;
  double value = 0;
};
using SampleSource = std::function<std::vector<Sample>()>;

// The registry of every metric a process exposes.
class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Each name may be registered once. Names and label names must match Prometheus'
  // [a-zA-Z_:][a-zA-Z0-9_:]* (REQUIRES; they are constants in the code).
  Family<Counter>& AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> labels = {});
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> labels = {});
  Family<Histogram>& AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<std::string> labels, std::vector<double> bounds);
  // A gauge (or, with `counter`, a counter) read from `source` at each scrape.
  void AddComputed(const std::string& name, const std::string& help,
                   std::vector<std::string> labels, SampleSource source, bool counter = false);

  // The text exposition of every metric, in registration order.
  std::string Render() const;

  // Bucket bounds for durations in seconds, from 1 ms to 5 min.
  static std::vector<double> LatencyBounds();
  // Bucket bounds for sizes in bytes, from 1 KiB to 16 GiB.
  static std::vector<double> SizeBounds();

 private:
  struct Entry;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

// How a number is written in the exposition format: integers without a fraction, the
// rest with enough digits to read back the same double, and +Inf, -Inf, NaN.
std::string FormatMetricValue(double v);
// A label value or HELP text escaped as the format requires (\\, \n, and in labels \").
std::string EscapeLabelValue(const std::string& v);
std::string EscapeHelp(const std::string& v);

}  // namespace regfs::httpd
