// An HTTP server whose every connection is a coroutine of Boost.Asio's spawn
// on a stack from stackalloc, with a guard page below it; Boost.Beast reads
// the requests and writes the answers (a line of text to every request;
// connections are kept alive).
//
//   bazel run -c opt //examples/asio:http_server -- --port=8080
//   curl http://127.0.0.1:8080/
//
// Flags:
//   --port=N       the port on 127.0.0.1 (default 8080; 0: any free port)
//   --threads=N    threads running the io_context (default: one per core)
//   --stack=NAME   ours (default): stackalloc::BoostStackAllocator; or
//                  Boost's own, to compare: fixedsize (fixedsize_stack, malloc
//                  and no guard) or protected (protected_fixedsize_stack)
//   --stack_kib=N  the stack size (default 128, Boost's default)
//
// Prints "listening on 127.0.0.1:<port>" once it accepts connections. The
// first SIGINT or SIGTERM stops accepting; the server exits when its last
// connection ends (a second signal kills it), then prints stackalloc's stack
// statistics: every stack came back.

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "boost/asio/detached.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/signal_set.hpp"
#include "boost/asio/spawn.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/beast/core/error.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"
#include "boost/context/fixedsize_stack.hpp"
#include "boost/context/protected_fixedsize_stack.hpp"
#include "boost_stack_allocator.h"  // stackalloc::BoostStackAllocator
#include "stats/mstats.h"           // stackalloc::ReadMemStats

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::beast::error_code;
using tcp = asio::ip::tcp;

namespace {

// One connection: answers its requests until the client closes it.
void Session(tcp::socket& socket, asio::yield_context yield) {
  boost::beast::flat_buffer buffer;
  error_code ec;
  for (;;) {
    http::request<http::string_body> request;
    http::async_read(socket, buffer, request, yield[ec]);
    if (ec) break;  // http::error::end_of_stream: the client closed.
    http::response<http::string_body> response(http::status::ok,
                                               request.version());
    response.set(http::field::content_type, "text/plain");
    response.keep_alive(request.keep_alive());
    response.body() = "Hello from a coroutine on a stackalloc stack\n";
    response.prepare_payload();
    http::async_write(socket, response, yield[ec]);
    if (ec || !response.keep_alive()) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
}

// Accepts connections until the acceptor is closed, each in a coroutine of
// its own on the io_context's threads. (salloc by value: Boost's allocators
// allocate through a non-const member.)
template <typename StackAllocator>
void Accept(tcp::acceptor& acceptor, asio::io_context& ioc,
            StackAllocator salloc, asio::yield_context yield) {
  for (;;) {
    error_code ec;
    tcp::socket socket = acceptor.async_accept(ioc.get_executor(), yield[ec]);
    // Closed by the signal handler (while we waited, or just after a
    // connection came): stopping.
    if (!acceptor.is_open()) return;
    if (ec) {  // Out of file descriptors, say: the client waits a moment.
      fprintf(stderr, "http_server: accept: %s\n", ec.message().c_str());
      asio::steady_timer pause(acceptor.get_executor(),
                               std::chrono::milliseconds(100));
      pause.async_wait(yield[ec]);
      continue;
    }
    try {
      // One coroutine per connection, on a stack from salloc: Asio's spawn
      // takes a Boost.Context stack allocator since Boost 1.80.
      asio::spawn(
          ioc.get_executor(), std::allocator_arg, salloc,
          [socket = std::move(socket)](asio::yield_context y) mutable {
            Session(socket, y);
          },
          asio::detached);
    } catch (const std::bad_alloc&) {  // No stack: the connection closes.
      fprintf(stderr, "http_server: no stack for a connection: bad_alloc\n");
    }
  }
}

template <typename StackAllocator>
void Serve(StackAllocator salloc, int port, int threads) {
  asio::io_context ioc(threads);
  // The acceptor and the signal handler that closes it share a strand, so
  // they never run at once.
  auto strand = asio::make_strand(ioc);
  tcp::acceptor acceptor(strand, tcp::endpoint(asio::ip::address_v4::loopback(),
                                               static_cast<uint16_t>(port)));
  printf("listening on 127.0.0.1:%u\n", acceptor.local_endpoint().port());
  fflush(stdout);
  asio::spawn(
      strand, std::allocator_arg, salloc,
      [&](asio::yield_context yield) { Accept(acceptor, ioc, salloc, yield); },
      asio::detached);
  asio::signal_set signals(strand, SIGINT, SIGTERM);
  signals.async_wait([&](const error_code&, int) {
    acceptor.close();
    signals.clear();  // The next signal kills the process.
  });
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&ioc] {
      // An M for the thread now: an overflow on it is reported by name even
      // if it never allocated a stack (harmless with Boost's allocators).
      stackalloc::BoostStackAllocator::PrepareThread();
      ioc.run();
    });
  }
  for (std::thread& t : pool) t.join();
}

}  // namespace

int main(int argc, char** argv) try {
  int port = 8080;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  std::string stack = "ours";
  size_t stack_kib = 128;
  for (int i = 1; i < argc; ++i) {
    const char* value = strchr(argv[i], '=');
    const std::string flag(
        argv[i], value == nullptr ? strlen(argv[i]) : value - argv[i]);
    if (value != nullptr && flag == "--port") {
      port = atoi(value + 1);
    } else if (value != nullptr && flag == "--threads") {
      threads = atoi(value + 1);
    } else if (value != nullptr && flag == "--stack") {
      stack = value + 1;
    } else if (value != nullptr && flag == "--stack_kib") {
      stack_kib = strtoul(value + 1, nullptr, 10);
    } else {
      fprintf(stderr, "http_server: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (port < 0 || port > 65535 || threads < 1 || stack_kib < 4) {
    fprintf(stderr, "http_server: bad --port, --threads or --stack_kib\n");
    return 2;
  }
  const size_t size = stack_kib << 10;
  // The one line that changes: stackalloc::BoostStackAllocator where Boost's
  // default was boost::context::fixedsize_stack.
  if (stack == "ours") {
    Serve(stackalloc::BoostStackAllocator(size), port, threads);
  } else if (stack == "fixedsize") {
    Serve(boost::context::fixedsize_stack(size), port, threads);
  } else if (stack == "protected") {
    Serve(boost::context::protected_fixedsize_stack(size), port, threads);
  } else {
    fprintf(stderr, "http_server: --stack is ours, fixedsize or protected\n");
    return 2;
  }
  const stackalloc::MemStats st = stackalloc::ReadMemStats();
  printf("stopped: %llu bytes of stackalloc stacks in use, %llu unguarded\n",
         static_cast<unsigned long long>(st.stacks_inuse),
         static_cast<unsigned long long>(st.stacks_unguarded));
  return 0;
} catch (const std::exception& e) {  // The port taken, say.
  fprintf(stderr, "http_server: %s\n", e.what());
  return 1;
}
