#include "handlers/api_handler.h"

#include <Poco/Exception.h>

#include <chrono>

#include "connection_guard.h"
#include "proxy/pull_through_cache.h"
#include "regfs/core/names.h"
#include "request_framing.h"

namespace regfs::httpd {

namespace {

// The method as a metric label: the API's methods, and one label for anything else, so a
// client inventing methods cannot grow the metrics without bound.
std::string MethodLabel(const std::string& method) {
  static const char* const kKnown[] = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"};
  for (const char* known : kKnown) {
    if (method == known) return method;
  }
  return "OTHER";
}

struct InFlight {
  explicit InFlight(std::atomic<int>& n) : n_(n) { n_.fetch_add(1); }
  ~InFlight() { n_.fetch_sub(1); }
  std::atomic<int>& n_;
};

}  // namespace

void ApiHandler::MethodNotAllowed(Exchange& ex, const std::string& allowed) {
  ex.response().set("Allow", allowed);
  ex.SendError(Poco::Net::HTTPResponse::HTTP_METHOD_NOT_ALLOWED, "UNSUPPORTED",
               "method " + ex.method() + " is not allowed here; allowed: " + allowed);
}

void ApiHandler::HandleAuthenticated(Exchange& ex) {
  bool has_name = route_.kind != Route::Kind::kBase && route_.kind != Route::Kind::kCatalog &&
                  route_.kind != Route::Kind::kUnknown;
  Status name_ok = has_name ? ValidateRepositoryName(route_.name) : Status::Ok();
  if (!name_ok.ok()) return ex.SendError(name_ok);
  if (has_name && context_.proxy != nullptr && context_.proxy->Mirrors(route_.name)) {
    const bool read = ex.method() == "GET" || ex.method() == "HEAD";
    const bool upload = route_.kind == Route::Kind::kUploadStart || route_.kind == Route::Kind::kUpload;
    if (upload || (!read && (route_.kind == Route::Kind::kManifest ||
                             route_.kind == Route::Kind::kBlob))) {
      // As registry:2 in proxy mode: a cache holds what its upstream has, nothing else.
      ex.AbandonBody();
      return ex.SendError(Poco::Net::HTTPResponse::HTTP_METHOD_NOT_ALLOWED, "UNSUPPORTED",
                          "repository " + route_.name + " is a pull-through cache of " +
                              context_.proxy->Describe(route_.name) +
                              ": it accepts no pushes or deletes; push to a repository outside "
                              "the proxied prefixes");
    }
  }
  Handle(ex);
}

void ApiHandler::SendProxyError(Exchange& ex, const Status& status) {
  // The upstream's failure is the message: the client (and whoever reads its error) learns
  // the cache could not reach or use its upstream, which the registry's log details.
  switch (status.code()) {
    case Status::Code::kUnavailable:
    case Status::Code::kPermissionDenied:
      return ex.SendError(Poco::Net::HTTPResponse::HTTP_BAD_GATEWAY, "UNAVAILABLE",
                          status.message());
    case Status::Code::kResourceExhausted:
      return ex.SendError(Poco::Net::HTTPResponse::HTTP_TOO_MANY_REQUESTS, "TOOMANYREQUESTS",
                          status.message());
    default:
      return ex.SendError(status);
  }
}

std::vector<Need> ApiHandler::Needs(const Exchange& ex) const {
  const std::string& method = ex.method();
  const bool read = method == "GET" || method == "HEAD";
  auto on_repository = [&](Actions actions) {
    return std::vector<Need>{{.kind = Need::Kind::kRepository,
                              .repository = route_.name,
                              .actions = actions}};
  };
  switch (route_.kind) {
    case Route::Kind::kBase:
    case Route::Kind::kUnknown:
      return {};
    case Route::Kind::kCatalog:
      return {{.kind = Need::Kind::kCatalog}};
    case Route::Kind::kTags:
    case Route::Kind::kReferrers:
      return on_repository(kPull);
    case Route::Kind::kManifest:
    case Route::Kind::kBlob:
      if (method == "DELETE") return on_repository(kDelete);
      return on_repository(read ? kPull : kPush);
    case Route::Kind::kUploadStart:
      if (method == "POST") {
        // A mount reveals whether `from` holds the blob: it needs pull there (registry:2 and
        // token servers ask for both scopes). A `from` that is no valid name names nothing
        // to read; the request is then an ordinary upload.
        auto from = ex.Query("from");
        if (ex.Query("mount") && from && ValidateRepositoryName(*from).ok()) {
          if (*from == route_.name) return on_repository(kPush | kPull);
          auto needs = on_repository(kPush);
          needs.push_back(
              {.kind = Need::Kind::kRepository, .repository = *from, .actions = kPull});
          return needs;
        }
      }
      return on_repository(kPush);
    case Route::Kind::kUpload:
      return on_repository(kPush);
  }
  return {};
}

void ApiHandler::Dispatch(Exchange& ex, std::string* user) {
  Poco::Net::HTTPServerRequest& request = ex.request();
  auto decision = context_.authorizer.Decide(request, Needs(ex));
  *user = decision.caller.name;
  switch (decision.outcome) {
    case Authorizer::Decision::Outcome::kAllow:
      ex.set_caller(std::move(decision.caller));
      HandleAuthenticated(ex);
      break;
    case Authorizer::Decision::Outcome::kChallenge:
      if (decision.reason != "authentication required") {
        context_.logger.Debug(request.getMethod() + " " + route_.name + ": " + decision.reason);
      }
      ex.response().set("WWW-Authenticate", decision.challenge);
      ex.SendError(Poco::Net::HTTPResponse::HTTP_UNAUTHORIZED, "UNAUTHORIZED", decision.reason);
      break;
    case Authorizer::Decision::Outcome::kDeny:
      ex.SendError(Poco::Net::HTTPResponse::HTTP_FORBIDDEN, "DENIED",
                   "requested access to the resource is denied");
      break;
  }
}

void ApiHandler::handleRequest(Poco::Net::HTTPServerRequest& request,
                               Poco::Net::HTTPServerResponse& response) {
  InFlight in_flight(context_.in_flight);
  // The connection's head clock stops while the request is handled and restarts after it.
  struct Handling {
    Handling() { ConnectionGuard::RequestStarted(); }
    ~Handling() { ConnectionGuard::RequestFinished(); }
  } handling;
  auto started = std::chrono::steady_clock::now();
  Exchange ex(request, response, context_);
  response.set("Docker-Distribution-API-Version", "registry/2.0");
  for (const auto& [name, values] : context_.config.headers) {
    for (const auto& v : values) response.add(name, v);
  }
  const char* handler = HandlerLabel(route_.kind);
  Gauge* in_flight_gauge = nullptr;
  if (context_.metrics != nullptr) {
    in_flight_gauge = &context_.metrics->in_flight.With({handler});
    in_flight_gauge->Add(1);
  }
  std::string user;
  try {
    if (context_.health != nullptr && !context_.health->Healthy()) {
      // As registry:2: a replica whose checks fail sends clients away (a load balancer
      // retries elsewhere); what fails is on /debug/health.
      ex.AbandonBody();
      ex.SendError(Poco::Net::HTTPResponse::HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE",
                   "health check failed: please see /debug/health");
    } else if (auto framing = CheckFraming(request)) {
      context_.logger.Debug(request.getMethod() + " " + LoggableTarget(request.getURI()) +
                            ": " + framing->message);
      ex.AbandonBody();
      ex.SendError(framing->status, framing->code, framing->message);
    } else {
      Dispatch(ex, &user);
    }
  } catch (const Poco::Exception& e) {
    context_.logger.Warn(request.getMethod() + " " + LoggableTarget(request.getURI()) +
                         " failed: " + e.displayText());
    ex.AbandonBody();  // the exchange broke off midway: nothing more is read from it
    if (!ex.sent()) ex.SendError(Status::IOError(e.displayText()));
  } catch (const std::exception& e) {
    context_.logger.Error(request.getMethod() + " " + LoggableTarget(request.getURI()) +
                          " failed: " + e.what());
    ex.AbandonBody();
    if (!ex.sent()) ex.SendError(Status::IOError(e.what()));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (context_.metrics != nullptr) {
    ServerMetrics& m = *context_.metrics;
    const std::string method = MethodLabel(request.getMethod());
    m.requests.With({method, handler, std::to_string(static_cast<int>(response.getStatus()))})
        .Add();
    m.duration.With({method, handler}).Observe(seconds);
    uint64_t in = ex.bytes_received();
    if (in == 0 && request.hasContentLength() && request.getContentLength64() > 0) {
      in = static_cast<uint64_t>(request.getContentLength64());
    }
    m.request_bytes.With({handler}).Observe(static_cast<double>(in));
    m.response_bytes.With({handler}).Observe(static_cast<double>(ex.bytes_sent()));
    in_flight_gauge->Add(-1);
  }
  if (context_.config.access_log) {
    Logger::Access a;
    a.remote = request.clientAddress().toString();
    a.user = user;
    a.method = request.getMethod();
    a.uri = LoggableTarget(request.getURI());
    a.status = static_cast<int>(response.getStatus());
    a.bytes = ex.bytes_sent();
    a.seconds = seconds;
    a.user_agent = request.get("User-Agent", "");
    a.cache = ex.cache_outcome();
    context_.logger.LogAccess(a);
  }
  ex.LingerIfClosingEarly();
}

}  // namespace regfs::httpd
