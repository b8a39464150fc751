// libFuzzer targets: the structure readers. One source, built three times with
// STEMTWIN_FUZZ_FORMAT = 0 (extended/Prismatic XYZ), 1 (POSCAR), 2 (CIF). The readers take
// a path, so each input is written to a private temporary file first. Any bytes must either
// read or throw StructureError.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "stemtwin/specimen/structure_io.hpp"

namespace {

const std::string& input_path() {
  // One file per process, named for the format so detect_format takes the intended reader.
  static const std::string path = [] {
    const char* names[] = {"input.xyz", "POSCAR", "input.cif"};
    char dir[] = "/tmp/stemtwin_fuzz_XXXXXX";
    if (!mkdtemp(dir)) std::abort();
    return std::string(dir) + "/" + names[STEMTWIN_FUZZ_FORMAT];
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = input_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  try {
    (void)stemtwin::read_structure(path);
  } catch (const stemtwin::StructureError&) {
  }
#if STEMTWIN_FUZZ_FORMAT != 0
  try {
    (void)stemtwin::read_crystal(path);
  } catch (const stemtwin::StructureError&) {
  }
#endif
  return 0;
}
