// Composing from the building blocks (target d2v::core): the model file reader and a kernel, used
// directly from the installed headers. Prints the file's architecture and head, and softmax(1, 2, 3).
#include <cstdio>
#include <vector>

#include "d2v/kernels/ops.h"
#include "d2v/model_file.h"

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    try {
        const d2v::ModelFile file(argv[1]);
        std::vector<float> x{1.0f, 2.0f, 3.0f};
        d2v::softmax_inplace(x.data(), 3);
        std::printf("%s %s %.6f\n", file.architecture().c_str(), file.model_class().c_str(), x[2]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "compose: %s\n", e.what());
        return 1;
    }
    return 0;
}
