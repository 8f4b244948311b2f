// A shared object that links the library can be dlclose()d while threads
// that used it live on, and the handlers it installed keep working: the
// library pins its shared object (RTLD_NODELETE) the first time it binds a
// thread, so its thread-exit hook, fork handlers and overflow handler stay
// loaded (README, "Unloading").
//
// Regression: dlclose() unmapped the library while a thread that had used
// it still ran; in the optimised build the process died when that thread
// exited (its thread-exit destructor was gone).

#include <dlfcn.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"

namespace stackalloc {
namespace {

// Runs f() in a child process and returns its exit status, or 128 + the
// signal that killed it. (Not testing/test_helpers: this binary links
// nothing of the library's, whose one copy is the plugin's.)
template <typename F>
int RunInChild(F f) {
  const pid_t pid = fork();
  if (pid < 0) abort();
  if (pid == 0) _exit(f());
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) abort();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

const char* plugin_path = nullptr;  // argv[1]: the plugin's shared object.

void* OpenPlugin() {
  void* h = dlopen(plugin_path, RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) _exit(80);
  return h;
}

template <typename F>
F Symbol(void* h, const char* name) {
  void* f = dlsym(h, name);
  if (f == nullptr) _exit(81);
  return reinterpret_cast<F>(f);
}

TEST(UnloadTest, AThreadThatUsedItOutlivesTheDlclose) {
  const int status = RunInChild([] {
    void* h = OpenPlugin();
    auto allocate = Symbol<int (*)()>(h, "PluginAllocateAndFree");
    std::mutex mu;
    std::condition_variable cv;
    bool used = false, closed = false;
    std::thread t([&] {
      if (allocate() != 0) _exit(1);
      std::unique_lock<std::mutex> l(mu);
      used = true;
      cv.notify_all();
      cv.wait(l, [&] { return closed; });
      // Exits now: its M goes back through the plugin's exit hook.
    });
    {
      std::unique_lock<std::mutex> l(mu);
      cv.wait(l, [&] { return used; });
    }
    if (dlclose(h) != 0) return 2;
    {
      std::lock_guard<std::mutex> l(mu);
      closed = true;
      cv.notify_all();
    }
    t.join();
    // Pinned: still loaded, for good.
    if (dlopen(plugin_path, RTLD_NOW | RTLD_NOLOAD) == nullptr) return 3;
    return 0;
  });
  EXPECT_EQ(status, 0) << "exit status, or 128 + the signal";
}

sigjmp_buf jump;
std::atomic<int> user_faults{0};
void UserHandler(int) {
  user_faults.fetch_add(1);
  siglongjmp(jump, 1);
}

// A handler installed before the plugin's keeps getting the faults that are
// not the plugin's, after the plugin is closed; overflows of the plugin's
// stacks are still reported.
TEST(UnloadDeathTest, HandlersKeepWorkingAfterTheDlclose) {
  EXPECT_DEATH(
      {
        struct sigaction sa {};
        sa.sa_handler = &UserHandler;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, nullptr);
        void* h = OpenPlugin();
        auto stack = Symbol<void* (*)()>(h, "PluginStack");
        char* v = static_cast<char*>(stack());  // The plugin's handler in.
        if (v == nullptr) _exit(1);
        if (dlclose(h) != 0) _exit(2);
        char* page = static_cast<char*>(
            mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (sigsetjmp(jump, 1) == 0) *static_cast<volatile char*>(page) = 1;
        if (user_faults.load() != 1) _exit(3);
        *static_cast<volatile char*>(v - 1) = 1;  // Below the stack: ours.
      },
      "fatal error: stack overflow: 4096-byte stack");
}

// The plugin puts its handler in front (InstallStackOverflowHandler(), as
// the README advises a fixture's set-up to) before it makes any stack, and
// is closed: the handler installed before it keeps getting its faults.
// Regression: only binding a thread pinned the plugin, so the closed
// plugin's handler stayed installed over unmapped code, and the next fault
// of any kind killed the process with a bare SIGSEGV.
TEST(UnloadTest, AHandlerInstalledBeforeAnyStackSurvivesTheDlclose) {
  const int status = RunInChild([] {
    struct sigaction sa {};
    sa.sa_handler = &UserHandler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, nullptr);
    void* h = OpenPlugin();
    Symbol<void (*)()>(h, "PluginInstallHandler")();
    if (dlclose(h) != 0) return 2;
    char* page = static_cast<char*>(
        mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (sigsetjmp(jump, 1) == 0) *static_cast<volatile char*>(page) = 1;
    return user_faults.load() == 1 ? 0 : 3;
  });
  EXPECT_EQ(status, 0) << "exit status, or 128 + the signal";
}

}  // namespace
}  // namespace stackalloc

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    fprintf(stderr, "usage: %s PLUGIN.so\n", argv[0]);
    return 2;
  }
  stackalloc::plugin_path = argv[1];
  return RUN_ALL_TESTS();
}
