// maas/openmp.hpp: how the OpenMP threads of a program wait between
// parallel regions.
//
// libgomp's default is to spin. On a machine whose cores are shared (a
// virtual machine, a busy server) spinning threads take the cycles the
// working ones need, and programs made of many short parallel regions (a
// small transformer's training step runs hundreds) slow down several times:
// examples/gpt on 2 threads trained at 3,100 tokens/s spinning and 9,900
// passive, on a 2-core AMD EPYC virtual machine (bench/RESULTS.md).
// maas-serve and examples/gpt call this first thing in main():
//
//   int main(int argc, char** argv) {
//     maas::ensure_passive_openmp_wait(argv);  // may start the program again
//     ...
//
// libgomp reads OMP_WAIT_POLICY once, when it is loaded, before main; so
// when the variable is unset this sets it to "passive" and starts the
// program again with the same arguments (by its real path, so that ps shows
// its name). It returns when the variable was already set (the user's
// choice is kept), or when starting again failed (the program carries on
// with the default).
#pragma once

namespace maas {

void ensure_passive_openmp_wait(char** argv);

}  // namespace maas
