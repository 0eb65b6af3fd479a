#include "observability/debug_server.h"

#include <Poco/JSON/Object.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/URI.h>

#include <sstream>

namespace regfs::httpd {

namespace {

using Poco::Net::HTTPResponse;

void Send(Poco::Net::HTTPServerResponse& response, HTTPResponse::HTTPStatus status,
          const std::string& type, const std::string& body, bool head) {
  response.setStatus(status);
  response.setContentType(type);
  response.set("Cache-Control", "no-store");
  response.setContentLength(static_cast<std::streamsize>(body.size()));
  if (head) {
    response.send();
  } else {
    response.sendBuffer(body.data(), body.size());
  }
}

class ProbeHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  ProbeHandler(bool readiness, const HealthMonitor& health)
      : readiness_(readiness), health_(health) {}
  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    bool head = request.getMethod() == "HEAD";
    if (!readiness_) return Send(response, HTTPResponse::HTTP_OK, "text/plain", "ok\n", head);
    if (health_.draining()) {
      return Send(response, HTTPResponse::HTTP_SERVICE_UNAVAILABLE, "text/plain",
                  "draining: shutting down\n", head);
    }
    if (!health_.Healthy()) {
      return Send(response, HTTPResponse::HTTP_SERVICE_UNAVAILABLE, "text/plain",
                  "unhealthy: see /debug/health\n", head);
    }
    Send(response, HTTPResponse::HTTP_OK, "text/plain", "ok\n", head);
  }

 private:
  const bool readiness_;
  const HealthMonitor& health_;
};

class HealthHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit HealthHandler(const HealthMonitor& health) : health_(health) {}
  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    Poco::JSON::Object body;
    auto failing = health_.Failing();
    for (const auto& [name, error] : failing) body.set(name, error);
    if (health_.draining()) body.set("draining", "shutting down");
    std::ostringstream out;
    body.stringify(out);
    // A degraded check (Redis) shows here but leaves the status 200 unless a critical one
    // fails: what registry:2's endpoint means by healthy is "serving".
    Send(response,
         health_.Ready() ? HTTPResponse::HTTP_OK : HTTPResponse::HTTP_SERVICE_UNAVAILABLE,
         "application/json; charset=utf-8", out.str(), request.getMethod() == "HEAD");
  }

 private:
  const HealthMonitor& health_;
};

class MetricsHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit MetricsHandler(const Metrics& metrics) : metrics_(metrics) {}
  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    Send(response, HTTPResponse::HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
         metrics_.Render(), request.getMethod() == "HEAD");
  }

 private:
  const Metrics& metrics_;
};

class NotFound final : public Poco::Net::HTTPRequestHandler {
 public:
  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    Send(response, HTTPResponse::HTTP_NOT_FOUND, "text/plain", "not found\n",
         request.getMethod() == "HEAD");
  }
};

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Factory(const Config::Debug& config, const Metrics& metrics, const HealthMonitor& health)
      : config_(config), metrics_(metrics), health_(health) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest& request) override {
    std::string path;
    try {
      path = Poco::URI(request.getURI()).getPath();
    } catch (const Poco::Exception&) {
      return new NotFound;
    }
    if (request.getMethod() != "GET" && request.getMethod() != "HEAD") return new NotFound;
    if (auto* probe = NewProbeHandler(path, health_)) return probe;
    if (path == "/debug/health") return new HealthHandler(health_);
    if (config_.prometheus && path == config_.prometheus_path) return new MetricsHandler(metrics_);
    return new NotFound;
  }

 private:
  const Config::Debug& config_;
  const Metrics& metrics_;
  const HealthMonitor& health_;
};

}  // namespace

Poco::Net::HTTPRequestHandler* NewProbeHandler(const std::string& path,
                                               const HealthMonitor& health) {
  if (path == "/livez") return new ProbeHandler(false, health);
  if (path == "/readyz") return new ProbeHandler(true, health);
  return nullptr;
}

DebugServer::DebugServer(const Config::Debug& config, const Metrics& metrics,
                         const HealthMonitor& health)
    : config_(config), metrics_(metrics), health_(health) {}

DebugServer::~DebugServer() {
  if (server_) server_->stopAll(true);
}

Status DebugServer::Start() {
  try {
    Poco::Net::SocketAddress address =
        config_.addr.host.empty()
            ? Poco::Net::SocketAddress(static_cast<Poco::UInt16>(config_.addr.port))
            : Poco::Net::SocketAddress(config_.addr.host,
                                       static_cast<Poco::UInt16>(config_.addr.port));
    Poco::Net::ServerSocket socket(address, 64);
    Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
    params->setKeepAlive(true);
    params->setMaxThreads(4);
    params->setMaxQueued(64);
    params->setTimeout(Poco::Timespan(10, 0));
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(config_, metrics_, health_),
                                                      socket, params);
    server_->start();
  } catch (const Poco::Exception& e) {
    return Status::Unavailable("http.debug.addr " + config_.addr.ToString() + ": " +
                               e.displayText());
  }
  return Status::Ok();
}

}  // namespace regfs::httpd
