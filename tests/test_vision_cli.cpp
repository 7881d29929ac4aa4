// d2v-vision as a user meets it: every bad image gives a readable message naming the file and
// exit code 1; classification, segmentation (mask + overlay PNGs) and --dump work on the COCO photo.
#include "cli_util.h"
#include "d2v/version.h"
#include "d2v/model_file.h"
#include "d2v/vision/image_io.h"
#include "gguf_rewrite.h"

namespace {

std::string model(const std::string& variant) { return fixtures_dir() + "/vision/models/" + variant + "/model.gguf"; }
CliResult run_vision(const std::string& args) { return run_program(D2V_VISION_CLI, args); }
std::string coco() { return shared_data("images/coco_000000039769.png"); }

TEST(VisionCli, HelpExitsZero) {
    const CliResult r = run_vision("--help");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.output.find("usage: d2v-vision"), std::string::npos);
}

TEST(VisionCli, VersionExitsZero) {
    const CliResult r = run_vision("--version");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.output, std::string("d2v-vision ") + D2V_VERSION_STRING + "\n");
}

TEST(VisionCli, AbsurdProcessorSizeIsRefusedBeforeAllocating) {
    // A model file whose image processor asks for 65536x65536 would allocate ~51 GB of pixel_values.
    const std::string path = temp_path("huge_size.gguf");
    write_file(path, gguf_rewrite::with_strings(read_text(model("image_classification")),
                                             {{"d2v.preprocessor_json", std::string(R"({"size": 65536})")}}));
    expect_bounded_error(run_program_bounded(D2V_VISION_CLI, "-m " + path + " " + coco(), 2048, 60),
                         "sizes above 2048 pixels per side are refused");
}

TEST(VisionCli, MissingFile) {
    expect_error(run_vision("-m " + model("image_classification") + " /nonexistent/cat.png"), "/nonexistent/cat.png");
}

TEST(VisionCli, EveryBadImageIsRefusedWithItsReason) {
    // truncated PNG, corrupt JPEG, zero-sized image, a 100000x100000 header, a text file named
    // .png, an empty file: the expected message fragments come with the fixtures.
    const auto cases = d2v::Json::parse(read_text(fixtures_dir() + "/vision/preprocess/cases.json"))["bad"];
    ASSERT_GE(cases.size(), 5u);
    for (const auto& c : cases) {
        const std::string path = fixtures_dir() + "/vision/" + c["file"].get<std::string>();
        SCOPED_TRACE(path);
        const CliResult r = run_vision("-m " + model("image_classification") + " " + path);
        expect_error(r, c["message_contains"].get<std::string>());
        EXPECT_NE(r.output.find(path), std::string::npos) << r.output;
    }
}

TEST(VisionCli, AudioModelIsRefused) {
    expect_error(run_vision("-m " + fixtures_dir() + "/audio/ctc/model.gguf " + coco()), "holds a 'data2vec-audio' model");
}

TEST(VisionCli, ClassifiesWithLabelNames) {
    const CliResult r = run_vision("-m " + model("image_classification") + " --json -k 3 " + coco());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto doc = d2v::Json::parse(r.output);
    EXPECT_EQ(doc["results"][0]["labels"].size(), 3u);
}

TEST(VisionCli, SegmentationWritesMaskAndOverlayAtThePhotoSize) {
    const std::string dir = temp_path("seg_out");
    const CliResult r = run_vision("-m " + model("semantic_segmentation") + " --json -o " + dir + " " + coco());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto doc = d2v::Json::parse(r.output);
    double total = 0;
    for (const auto& c : doc["results"][0]["classes"]) total += c["share"].get<double>();
    EXPECT_NEAR(total, 1.0, 1e-9);
    for (const char* suffix : {".mask.png", ".overlay.png"}) {
        const auto img = d2v::vision::read_image(dir + "/coco_000000039769" + suffix);
        EXPECT_EQ(img.width, 640);
        EXPECT_EQ(img.height, 480);
    }
}

TEST(VisionCli, DumpWritesPixelValuesAndLogits) {
    const std::string dir = temp_path("vision_dump");
    const CliResult r = run_vision("-m " + model("image_classification") + " --output-hidden-states --dump " + dir + " " + coco());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto pixels = d2v::read_npy(dir + "/pixel_values.npy");
    EXPECT_EQ(pixels.shape.size(), 4u);
    for (const char* f : {"logits", "hidden_states.0"}) EXPECT_TRUE(fs::exists(dir + "/" + f + ".npy")) << f;
}

}  // namespace
