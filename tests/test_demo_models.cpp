// The bundled demo models (models/, trained by weights_tools/train_demo.py) on the bundled samples
// (samples/, espeak-ng speech named after what is said): what the README's first command promises.
#include <nlohmann/json.hpp>

#include "cli_util.h"

namespace {

std::string repo(const std::string& rel) { return std::string(D2V_SOURCE_DIR) + "/" + rel; }

nlohmann::json run_json(const std::string& model, const std::string& args) {
    const CliResult r = run_program(D2V_AUDIO_CLI, "-m " + repo(model) + " --json " + args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return nlohmann::json::parse(r.output, nullptr, /*allow_exceptions=*/false);
}

// "three_one_four.wav" -> "THREE ONE FOUR"
std::string spoken_text(const std::string& sample) {
    std::string text = sample.substr(0, sample.find('.'));
    for (char& c : text) c = c == '_' ? ' ' : char(std::toupper(static_cast<unsigned char>(c)));
    return text;
}

TEST(DemoModels, CtcTranscribesEverySample) {
    for (const std::string sample : {"three_one_four.wav", "two_zero_two_six.wav", "seven.wav"}) {
        const nlohmann::json out = run_json("models/digits-ctc.gguf", repo("samples/" + sample));
        ASSERT_TRUE(out.contains("results")) << out;
        EXPECT_EQ(out["results"][0]["transcript"], spoken_text(sample)) << sample;
    }
}

TEST(DemoModels, ClassifierNamesTheDigit) {
    const nlohmann::json out = run_json("models/digits-classify.gguf", "-k 1 " + repo("samples/seven.wav"));
    ASSERT_TRUE(out.contains("results")) << out;
    EXPECT_EQ(out["results"][0]["labels"][0]["label"], "seven");
}

}  // namespace
