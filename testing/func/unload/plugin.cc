// A plugin that links stackalloc, as a shared object a program loads with
// dlopen() and unloads with dlclose() (//testing/func/unload:unload_test).

#include <cstddef>

#include "stackalloc.h"

extern "C" {

// The plugin's interface, which unload_test looks up with dlsym(): declared
// here, as no header of ours includes them.
int PluginAllocateAndFree();
void* PluginStack();
void PluginInstallHandler();

// Allocates and frees a stack on the calling thread (which binds an M, with
// its thread-exit hook, and installs the overflow handler); 0 on success.
__attribute__((visibility("default"))) int PluginAllocateAndFree() {
  void* v = stackalloc::stackalloc(4096);
  if (v == nullptr) return 1;
  stackalloc::stackfree(v, 4096);
  return 0;
}

// A stack of 4096 bytes from the plugin's allocator, kept.
__attribute__((visibility("default"))) void* PluginStack() {
  return stackalloc::stackalloc(4096);
}

// Puts the plugin's overflow handler in front, as a test fixture's set-up
// does (README, "Signals and other handlers"), before any stack is made.
__attribute__((visibility("default"))) void PluginInstallHandler() {
  stackalloc::InstallStackOverflowHandler();
}

}  // extern "C"
