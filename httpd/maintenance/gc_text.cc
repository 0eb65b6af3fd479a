#include "maintenance/gc_text.h"

#include <cstdio>

namespace regfs::httpd {

namespace {
const char* UnitOf(GcProgress::Phase phase) {
  switch (phase) {
    case GcProgress::Phase::kMark:
      return "repositories";
    case GcProgress::Phase::kSweepBlobs:
      return "blobs";
    case GcProgress::Phase::kPurgeUploads:
      return "uploads";
  }
  return "items";
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Items per second and seconds left, or negative when not known yet.
std::pair<double, double> RateAndLeft(const GcProgress& p) {
  double elapsed = Seconds(p.elapsed);
  if (elapsed <= 0 || p.done == 0) return {-1, -1};
  double rate = static_cast<double>(p.done) / elapsed;
  double left = p.total > p.done ? static_cast<double>(p.total - p.done) / rate : 0;
  return {rate, left};
}

std::string Plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}
}  // namespace

std::string FormatBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  }
  return text;
}

std::string FormatDuration(std::chrono::steady_clock::duration d) {
  auto s = static_cast<long long>(Seconds(d) + 0.5);
  char text[32];
  if (s < 60) {
    std::snprintf(text, sizeof text, "%llds", s);
  } else if (s < 3600) {
    std::snprintf(text, sizeof text, "%lldm%02llds", s / 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  }
  return text;
}

std::string FormatProgress(const GcProgress& p) {
  std::string out = std::string(PhaseName(p.phase)) + ": " + std::to_string(p.done);
  if (p.total > 0) out += "/" + std::to_string(p.total);
  out += std::string(" ") + UnitOf(p.phase);
  auto [rate, left] = RateAndLeft(p);
  if (rate >= 0) {
    out += ", " + std::to_string(static_cast<long long>(rate + 0.5)) + "/s";
    if (p.total > 0) {
      out += ", about " + FormatDuration(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(left))) +
             " left";
    }
  }
  return out;
}

std::string FormatProgressBar(const GcProgress& p, size_t width) {
  size_t filled = p.total > 0 ? static_cast<size_t>(width * p.done / p.total) : 0;
  std::string bar = std::string(filled, '#') + std::string(width - std::min(filled, width), '.');
  char head[16];
  std::snprintf(head, sizeof head, "%-7s", PhaseName(p.phase));
  std::string out = std::string(head) + " [" + bar + "] " + std::to_string(p.done);
  if (p.total > 0) out += "/" + std::to_string(p.total);
  auto [rate, left] = RateAndLeft(p);
  if (rate >= 0) {
    out += "  " + std::to_string(static_cast<long long>(rate + 0.5)) + "/s";
    if (p.total > 0) {
      out += "  ETA " + FormatDuration(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(left)));
    }
  }
  return out;
}

std::string FormatSummary(const GcReport& r, bool dry_run) {
  std::string out = Plural(r.repositories, "repository", "repositories") + ": " +
                    std::to_string(r.manifests_marked) + " manifests and " +
                    std::to_string(r.blobs_marked) + " blobs marked; " +
                    (dry_run ? "would delete " : "deleted ") +
                    Plural(r.manifests_deleted, "manifest", "manifests") + ", " +
                    (r.tags_expired > 0
                         ? Plural(r.tags_expired, "expired cache tag", "expired cache tags") + ", "
                         : std::string()) +
                    Plural(r.blobs_deleted, "blob", "blobs") + " (" + FormatBytes(r.bytes_freed) +
                    "), " + Plural(r.layer_links_deleted, "layer link", "layer links") + ", " +
                    Plural(r.repositories_removed, "empty repository", "empty repositories") +
                    ", " + Plural(r.uploads_purged, "abandoned upload", "abandoned uploads") +
                    " and " + Plural(r.leftovers_removed, "leftover file", "leftover files") + "; ";
  out += Plural(r.blobs_rescued, "blob", "blobs") + " linked meanwhile kept; in " +
         FormatDuration(r.duration);
  return out;
}

}  // namespace regfs::httpd
