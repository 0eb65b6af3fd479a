#include "observability/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <variant>

namespace regfs::httpd {

namespace {

// std::atomic<double>::fetch_add is C++20 but not in every libstdc++ this builds with.
void AtomicAdd(std::atomic<double>& a, double v) {
  double old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
  }
}

}  // namespace

void Counter::Add(double v) {
  if (v > 0) AtomicAdd(value_, v);  // a counter never goes down
}

void Gauge::Add(double v) { AtomicAdd(value_, v); }

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, v);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  // The count is the +Inf bucket, so a scrape racing an observation stays consistent.
  s.count = running;
  return s;
}

template <typename Series>
Family<Series>::Family(std::string name, std::string help, std::vector<std::string> labels,
                       std::function<std::unique_ptr<Series>()> make)
    : name_(std::move(name)),
      help_(std::move(help)),
      labels_(std::move(labels)),
      make_(std::move(make)) {}

template <typename Series>
Series& Family<Series>::With(const LabelValues& values) {
  std::lock_guard lock(mu_);
  auto& slot = series_[values];
  if (!slot) slot = make_();
  return *slot;
}

template <typename Series>
std::vector<std::pair<LabelValues, const Series*>> Family<Series>::Snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<LabelValues, const Series*>> out;
  out.reserve(series_.size());
  for (const auto& [values, series] : series_) out.emplace_back(values, series.get());
  return out;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

struct Metrics::Entry {
  struct Computed {
    std::string name, help;
    std::vector<std::string> labels;
    SampleSource source;
    bool counter;
  };
  std::variant<std::unique_ptr<Family<Counter>>, std::unique_ptr<Family<Gauge>>,
               std::unique_ptr<Family<Histogram>>, Computed>
      metric;
};

Metrics::Metrics() = default;
Metrics::~Metrics() = default;

Family<Counter>& Metrics::AddCounter(const std::string& name, const std::string& help,
                                     std::vector<std::string> labels) {
  std::unique_ptr<Family<Counter>> f(new Family<Counter>(
      name, help, std::move(labels), [] { return std::make_unique<Counter>(); }));
  auto& ref = *f;
  std::lock_guard lock(mu_);
  entries_.push_back(std::make_unique<Entry>(Entry{std::move(f)}));
  return ref;
}

Family<Gauge>& Metrics::AddGauge(const std::string& name, const std::string& help,
                                 std::vector<std::string> labels) {
  std::unique_ptr<Family<Gauge>> f(
      new Family<Gauge>(name, help, std::move(labels), [] { return std::make_unique<Gauge>(); }));
  auto& ref = *f;
  std::lock_guard lock(mu_);
  entries_.push_back(std::make_unique<Entry>(Entry{std::move(f)}));
  return ref;
}

Family<Histogram>& Metrics::AddHistogram(const std::string& name, const std::string& help,
                                         std::vector<std::string> labels,
                                         std::vector<double> bounds) {
  std::unique_ptr<Family<Histogram>> f(new Family<Histogram>(
      name, help, std::move(labels), [bounds] { return std::make_unique<Histogram>(bounds); }));
  auto& ref = *f;
  std::lock_guard lock(mu_);
  entries_.push_back(std::make_unique<Entry>(Entry{std::move(f)}));
  return ref;
}

void Metrics::AddComputed(const std::string& name, const std::string& help,
                          std::vector<std::string> labels, SampleSource source, bool counter) {
  std::lock_guard lock(mu_);
  entries_.push_back(std::make_unique<Entry>(
      Entry{Entry::Computed{name, help, std::move(labels), std::move(source), counter}}));
}

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.17g", v);
  }
  return buf;
}

namespace {

std::string Escape(const std::string& v, bool quotes) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="x",b="y"} with `extra` (le="...") appended; empty when there are no labels at all.
std::string LabelSet(const std::vector<std::string>& names, const LabelValues& values,
                     const std::string& extra = "") {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + Escape(values[i], true) + "\"";
  }
  if (!extra.empty()) out += (out.empty() ? "{" : ",") + extra;
  if (!out.empty()) out += "}";
  return out;
}

void Header(std::string& out, const std::string& name, const std::string& help,
            const char* type) {
  out += "# HELP " + name + " " + EscapeHelp(help) + "\n";
  out += "# TYPE " + name + " " + type + "\n";
}

}  // namespace

std::string EscapeLabelValue(const std::string& v) { return Escape(v, true); }
std::string EscapeHelp(const std::string& v) { return Escape(v, false); }

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& entry : entries_) {
    if (auto* c = std::get_if<std::unique_ptr<Family<Counter>>>(&entry->metric)) {
      const auto& f = **c;
      Header(out, f.name_, f.help_, "counter");
      for (const auto& [values, series] : f.Snapshot()) {
        out += f.name_ + LabelSet(f.labels_, values) + " " + FormatMetricValue(series->value()) +
               "\n";
      }
    } else if (auto* g = std::get_if<std::unique_ptr<Family<Gauge>>>(&entry->metric)) {
      const auto& f = **g;
      Header(out, f.name_, f.help_, "gauge");
      for (const auto& [values, series] : f.Snapshot()) {
        out += f.name_ + LabelSet(f.labels_, values) + " " + FormatMetricValue(series->value()) +
               "\n";
      }
    } else if (auto* h = std::get_if<std::unique_ptr<Family<Histogram>>>(&entry->metric)) {
      const auto& f = **h;
      Header(out, f.name_, f.help_, "histogram");
      for (const auto& [values, series] : f.Snapshot()) {
        auto snap = series->Read();
        const auto& bounds = series->bounds();
        for (size_t i = 0; i <= bounds.size(); ++i) {
          std::string le = i < bounds.size() ? FormatMetricValue(bounds[i]) : "+Inf";
          out += f.name_ + "_bucket" + LabelSet(f.labels_, values, "le=\"" + le + "\"") + " " +
                 std::to_string(snap.cumulative[i]) + "\n";
        }
        out += f.name_ + "_sum" + LabelSet(f.labels_, values) + " " + FormatMetricValue(snap.sum) +
               "\n";
        out += f.name_ + "_count" + LabelSet(f.labels_, values) + " " +
               std::to_string(snap.count) + "\n";
      }
    } else {
      const auto& computed = std::get<Entry::Computed>(entry->metric);
      Header(out, computed.name, computed.help, computed.counter ? "counter" : "gauge");
      for (const auto& sample : computed.source()) {
        out += computed.name + LabelSet(computed.labels, sample.labels) + " " +
               FormatMetricValue(sample.value) + "\n";
      }
    }
  }
  return out;
}

std::vector<double> Metrics::LatencyBounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
}

std::vector<double> Metrics::SizeBounds() {
  std::vector<double> b;
  for (double v = 1024; v <= 16.0 * (1ull << 30); v *= 16) b.push_back(v);
  return b;
}

}  // namespace regfs::httpd
