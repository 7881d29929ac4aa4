// The C++ consumer: transcribes audio files with a CTC model through d2v/d2v.hpp.
//   transcribe MODEL.gguf FILE...   ->  "FILE: TRANSCRIPT" per file
#include <cstdio>
#include <exception>

#include "d2v/d2v.hpp"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s MODEL.gguf FILE...  (data2vec.cpp %s)\n", argv[0], D2V_VERSION_STRING);
        return 2;
    }
    try {
        const d2v::Model model(argv[1]);
        const std::vector<std::string> files(argv + 2, argv + argc);
        const d2v::Result result = model.run_audio_files(files);
        for (size_t i = 0; i < files.size(); ++i) std::printf("%s: %s\n", files[i].c_str(), result.items[i].text.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: error: %s\n", argv[0], e.what());
        return 1;
    }
    return 0;
}
