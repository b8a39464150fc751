#pragma once
// What `stemtwin run --resume` checks beyond the runner's own (same scenario text, same
// shard): that this machine would compute with the FFT plan the file was written with.
//
// The bits of a result depend on the FFT plan (core/fft.hpp); a file records every plan of
// its samples in the root attribute `fft_plan` (space-separated; PRISM's is "S-matrix
// plan/window plan", windowed multislice's "window plan+…"). A resumed run must give the
// bytes of an uninterrupted one, so resuming is refused when the plan this machine makes
// for the grid of the file's last complete sample is not among the file's plans (another
// machine, FFTW build or wisdom file).
#include <string>

#include "stemtwin/dataset/shard.hpp"
#include "stemtwin/scenario/scenario.hpp"

namespace stemtwin {

/// Throws std::runtime_error naming the file, the file's plan(s), this machine's plan and
/// the sample and grid it was made for, when they differ. Does nothing when the file does
/// not exist, is unfinished, holds no complete sample or no `fft_plan` (written before plans
/// were recorded), was written from another scenario text or shard (the runner refuses
/// those with its own message), or when its last sample ran windowed multislice (whose
/// window grid is chosen inside the engine).
void check_resume_fft_plan(const ScenarioSpec& spec, const std::string& path, Shard shard);

}  // namespace stemtwin
