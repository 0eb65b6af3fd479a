#include "tls.h"

#include <Poco/Crypto/X509Certificate.h>
#include <openssl/ssl.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SecureServerSocket.h>

namespace regfs::httpd {

namespace {

Poco::Net::Context::Protocols MinimumProtocol(const std::string& name) {
  using C = Poco::Net::Context;
  if (name == "tls1.0") return C::PROTO_TLSV1;
  if (name == "tls1.1") return C::PROTO_TLSV1_1;
  if (name == "tls1.3") return C::PROTO_TLSV1_3;
  return C::PROTO_TLSV1_2;
}

Result<Poco::Net::Context::Ptr> MakeContext(const Config::Tls& tls) {
  using Poco::Net::Context;
  Context::Params params;
  params.privateKeyFile = tls.key;
  params.certificateFile = tls.certificate;
  params.verificationMode = tls.client_cas.empty() ? Context::VERIFY_NONE : Context::VERIFY_STRICT;
  params.loadDefaultCAs = false;
  params.verificationDepth = 9;
  if (!tls.cipher_suites.empty()) {
    std::string list;
    for (const auto& c : tls.cipher_suites) list += (list.empty() ? "" : ":") + c;
    params.cipherList = list;
  }
  try {
    Context::Ptr context = new Context(Context::TLS_SERVER_USE, params);
    context->requireMinimumProtocol(MinimumProtocol(tls.minimum));
    // Client certificates are checked against clientcas, not against the client's address.
    context->enableExtendedCertificateVerification(false);
    if (SSL_CTX_check_private_key(context->sslContext()) != 1) {
      return Status::InvalidArgument("http.tls: the key " + tls.key +
                                     " does not belong to the certificate " + tls.certificate);
    }
    for (const std::string& ca : tls.client_cas) {
      context->addCertificateAuthority(Poco::Crypto::X509Certificate(ca));
    }
    // Sessions are not resumed across replicas; keep the server stateless.
    context->disableStatelessSessionResumption();
    return context;
  } catch (const Poco::Exception& e) {
    return Status::InvalidArgument("http.tls: " + e.displayText());
  }
}

}  // namespace

Result<Poco::Net::ServerSocket> Listen(const Config& config) {
  const std::string addr = config.addr.ToString();
  try {
    Poco::Net::SocketAddress address(config.addr.host.empty() ? "0.0.0.0" : config.addr.host,
                                     static_cast<Poco::UInt16>(config.addr.port));
    if (!config.tls.enabled()) {
      Poco::Net::ServerSocket socket;
      socket.bind(address, /*reuseAddress=*/true, /*reusePort=*/false);
      socket.listen(1024);
      return socket;
    }
    Poco::Net::initializeSSL();
    auto context = MakeContext(config.tls);
    if (!context.ok()) return context.status();
    Poco::Net::SecureServerSocket socket(*context);
    socket.bind(address, /*reuseAddress=*/true, /*reusePort=*/false);
    socket.listen(1024);
    return Poco::Net::ServerSocket(socket);
  } catch (const Poco::Exception& e) {
    std::string why = e.displayText();
    if (why.find("in use") != std::string::npos) why = "address already in use";
    return Status::Unavailable("cannot listen on " + addr + ": " + why);
  }
}

}  // namespace regfs::httpd
