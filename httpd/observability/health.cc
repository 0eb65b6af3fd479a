#include "observability/health.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/NullStream.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>
#include <sys/stat.h>

namespace regfs::httpd {

HealthMonitor::~HealthMonitor() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void HealthMonitor::Add(HealthCheck check) {
  auto state = std::make_unique<State>();
  state->check = std::move(check);
  states_.push_back(std::move(state));
}

void HealthMonitor::Probe(State& state) {
  Status s = state.check.probe();
  std::lock_guard lock(mu_);
  bool was_failing = state.failing();
  if (s.ok()) {
    state.failures_in_a_row = 0;
    state.error.clear();
  } else {
    ++state.failures_in_a_row;
    state.error = s.message();
  }
  if (state.failing() != was_failing) {
    if (state.failing()) {
      logger_.Warn("health check " + state.check.name + " fails" +
                   (state.check.critical ? " (the replica answers 503 until it passes)"
                                         : " (serving on, degraded)") +
                   ": " + state.error);
    } else {
      logger_.Info("health check " + state.check.name + " passes again");
    }
  }
}

void HealthMonitor::Loop(State* state) {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, state->check.interval, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    Probe(*state);
    lock.lock();
  }
}

void HealthMonitor::Start() {
  for (auto& state : states_) Probe(*state);
  for (auto& state : states_) threads_.emplace_back(&HealthMonitor::Loop, this, state.get());
}

bool HealthMonitor::Healthy() const {
  std::lock_guard lock(mu_);
  for (const auto& state : states_) {
    if (state->check.critical && state->failing()) return false;
  }
  return true;
}

bool HealthMonitor::Ready() const { return !draining_ && Healthy(); }

std::map<std::string, std::string> HealthMonitor::Failing() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::string> out;
  for (const auto& state : states_) {
    if (state->failing()) out[state->check.name] = state->error;
  }
  return out;
}

std::vector<std::pair<std::string, bool>> HealthMonitor::States() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, bool>> out;
  for (const auto& state : states_) out.emplace_back(state->check.name, !state->failing());
  return out;
}

namespace {

Poco::Timespan Span(std::chrono::milliseconds d) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(d.count()) * 1000);
}

// The storage answers a listing of the registry's root; an empty registry (nothing there
// yet) is healthy.
Status ProbeStorage(StorageDriver& driver) {
  auto listed = driver.List("docker/registry/v2");
  if (!listed.ok() && !listed.status().IsNotFound()) return listed.status();
  return Status::Ok();
}

Status ProbeFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return Status::Unavailable("file " + path + " exists");
  return Status::Ok();
}

// What names an HTTP check in logs and /debug/health: no user info, no query (either may
// hold a credential).
std::string LoggableUri(const std::string& text) {
  try {
    Poco::URI uri(text);
    return uri.getScheme() + "://" + uri.getHost() + ":" + std::to_string(uri.getPort()) +
           uri.getPath();
  } catch (const Poco::Exception&) {
    return "(unparsable URI)";
  }
}

Status ProbeHttp(const Config::Health::Http& h) {
  try {
    Poco::URI uri(h.uri);
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    if (uri.getScheme() == "https") {
      session = std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort());
    } else {
      session = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
    }
    session->setTimeout(Span(h.timeout));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, uri.getPathAndQuery(),
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    for (const auto& [name, values] : h.headers) {
      for (const auto& v : values) request.add(name, v);
    }
    session->sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& body = session->receiveResponse(response);
    Poco::NullOutputStream sink;
    Poco::StreamCopier::copyStream(body, sink, 8192);
    if (static_cast<int>(response.getStatus()) != h.status) {
      // The URI only, without its query: a token in it stays out of the log.
      return Status::Unavailable("GET " + LoggableUri(h.uri) + " answered " +
                                 std::to_string(static_cast<int>(response.getStatus())) +
                                 ", expected " + std::to_string(h.status));
    }
  } catch (const Poco::Exception& e) {
    return Status::Unavailable("GET " + LoggableUri(h.uri) + ": " + e.displayText());
  }
  return Status::Ok();
}

Status ProbeTcp(const Config::Health::Tcp& t) {
  try {
    Poco::Net::StreamSocket socket;
    socket.connect(Poco::Net::SocketAddress(t.addr), Span(t.timeout));
    socket.close();
  } catch (const Poco::Exception& e) {
    return Status::Unavailable("connect to " + t.addr + ": " + e.displayText());
  }
  return Status::Ok();
}

}  // namespace

std::vector<HealthCheck> ConfiguredChecks(const Config& config,
                                          std::shared_ptr<StorageDriver> driver) {
  std::vector<HealthCheck> checks;
  if (config.health.storage.enabled) {
    checks.push_back({.name = "storagedriver_" + config.storage_driver,
                      .interval = config.health.storage.interval,
                      .threshold = config.health.storage.threshold,
                      .probe = [driver] { return ProbeStorage(*driver); }});
  }
  for (const auto& f : config.health.files) {
    checks.push_back({.name = "file:" + f.path,
                      .interval = f.interval,
                      .probe = [path = f.path] { return ProbeFile(path); }});
  }
  for (const auto& h : config.health.http) {
    checks.push_back({.name = "http:" + LoggableUri(h.uri),
                      .interval = h.interval,
                      .threshold = h.threshold,
                      .probe = [h] { return ProbeHttp(h); }});
  }
  for (const auto& t : config.health.tcp) {
    checks.push_back({.name = "tcp:" + t.addr,
                      .interval = t.interval,
                      .threshold = t.threshold,
                      .probe = [t] { return ProbeTcp(t); }});
  }
  return checks;
}

}  // namespace regfs::httpd
