// d2v-vision: run a converted data2vec-vision model on images. Classifies
// (ForImageClassification), segments (ForSemanticSegmentation: writes <name>.mask.png and
// <name>.overlay.png) or embeds (Data2VecVisionModel): whatever head the model file holds.
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "d2v/vision/pipeline.h"

using d2v::Error;
using d2v::Json;
using namespace d2v::vision;

namespace {

const char* kUsage = R"(usage: d2v-vision -m MODEL.gguf [options] IMAGE [IMAGE ...]

Runs a data2vec-vision model (converted by weights_tools/convert.py) on PNG/JPEG/BMP/GIF images,
preprocessed exactly as the checkpoint's BeitImageProcessor.

options:
  -m, --model FILE         model file (required)
  -t, --threads N          threads (default: %d)
  -k, --top-k N            classification: labels to print (default: 5)
  -o, --output-dir DIR     segmentation: where to write <name>.mask.png / <name>.overlay.png (default: next to the image)
      --json               print results as JSON
      --dump DIR           write pixel_values and every output as .npy (pixel_values, last_hidden_state,
                           pooler_output, logits, hidden_states.<i>, attentions.<i>)
      --output-hidden-states / --output-attentions   also compute/dump those
  -h, --help               show this help
      --version            print the version
)";

struct Options {
    std::string model, dump_dir, output_dir;
    int threads = cli::default_threads(), top_k = 5;
    bool json = false, hidden_states = false, attentions = false;
    std::vector<std::string> files;
};

Options parse(int argc, char** argv) {
    Options o;
    cli::Args args(argc, argv);
    while (!args.done()) {
        const std::string a = args.take();
        if (a == "-h" || a == "--help") {
            std::printf(kUsage, cli::default_threads());
            std::exit(0);
        } else if (a == "-m" || a == "--model") o.model = args.value(a);
        else if (a == "-t" || a == "--threads") o.threads = args.int_value(a, 1);
        else if (a == "-k" || a == "--top-k") o.top_k = args.int_value(a, 1);
        else if (a == "-o" || a == "--output-dir") o.output_dir = args.value(a);
        else if (a == "--json") o.json = true;
        else if (a == "--dump") o.dump_dir = args.value(a);
        else if (a == "--output-hidden-states") o.hidden_states = true;
        else if (a == "--output-attentions") o.attentions = true;
        else if (a.size() > 1 && a[0] == '-') throw cli::UsageError("unknown option '" + a + "'");
        else o.files.push_back(a);
    }
    if (o.model.empty()) throw cli::UsageError("no model given (-m MODEL.gguf)");
    if (o.files.empty()) throw cli::UsageError("no image given");
    return o;
}

// A fixed, well-spread colour per class (golden-ratio hue steps), class 0 included.
std::array<uint8_t, 3> class_colour(int64_t id) {
    const double h = std::fmod(double(id) * 0.618033988749895, 1.0) * 6.0, s = 0.75, v = id % 2 ? 0.95 : 0.75;
    const double c = v * s, x = c * (1 - std::fabs(std::fmod(h, 2.0) - 1)), m = v - c;
    double r = 0, g = 0, b = 0;
    switch (int(h)) {
        case 0: r = c; g = x; break;
        case 1: r = x; g = c; break;
        case 2: g = c; b = x; break;
        case 3: g = x; b = c; break;
        case 4: r = x; b = c; break;
        default: r = c; b = x; break;
    }
    return {uint8_t((r + m) * 255), uint8_t((g + m) * 255), uint8_t((b + m) * 255)};
}

std::string output_path(const Options& o, const std::string& image, const std::string& suffix) {
    std::string stem = image;
    if (auto dot = stem.find_last_of('.'); dot != std::string::npos && dot > stem.find_last_of('/') + 1) stem = stem.substr(0, dot);
    if (!o.output_dir.empty()) {
        cli::make_dump_dir(o.output_dir);
        stem = o.output_dir + "/" + stem.substr(stem.find_last_of('/') + 1);
    }
    return stem + suffix;
}

int run(const Options& o) {
    d2v::set_num_threads(o.threads);
    VisionPipeline pipe(o.model, "d2v-vision");
    std::vector<Image> images;
    for (const auto& f : o.files) images.push_back(read_image(f));
    const VisionBatch batch = pipe.prepare(images);
    std::vector<d2v::FeatureMap> maps;
    const d2v::NamedOutputs out = pipe.run(batch, {o.hidden_states, o.attentions}, nullptr, &maps);
    if (!o.dump_dir.empty()) {
        d2v::NamedOutputs dump = out;
        dump["pixel_values"] = batch.pixel_values;
        cli::dump_outputs(o.dump_dir, dump);
    }
    const auto& cfg = pipe.config();
    Json results = Json::array();
    for (size_t b = 0; b < images.size(); ++b) {
        Json r{{"file", o.files[b]}, {"width", images[b].width}, {"height", images[b].height}};
        switch (pipe.head()) {
            case VisionHead::ImageClassification: {
                const auto& logits = out.at("logits");
                const int64_t C = logits.shape[1];
                std::vector<float> p(logits.data.begin() + int64_t(b) * C, logits.data.begin() + int64_t(b + 1) * C);
                d2v::softmax_inplace(p.data(), C);
                std::vector<int64_t> order(static_cast<size_t>(C));
                for (int64_t i = 0; i < C; ++i) order[size_t(i)] = i;
                std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return p[size_t(x)] > p[size_t(y)]; });
                r["labels"] = Json::array();
                if (!o.json) std::printf("%s:\n", o.files[b].c_str());
                for (int64_t i = 0; i < std::min<int64_t>(C, o.top_k); ++i) {
                    const int64_t id = order[size_t(i)];
                    r["labels"].push_back({{"label", cfg.labels[size_t(id)]}, {"id", id}, {"score", p[size_t(id)]}});
                    if (!o.json) std::printf("  %-24s %.4f\n", cfg.labels[size_t(id)].c_str(), p[size_t(id)]);
                }
                break;
            }
            case VisionHead::SemanticSegmentation: {
                // Logits (1/4 resolution) upsampled bilinearly to the photo's own size, then argmax.
                const Image& img = images[b];
                const d2v::FeatureMap full = d2v::resize_bilinear(maps[b], img.height, img.width);
                Image mask{img.width, img.height, std::vector<uint8_t>(size_t(img.width * img.height * 3))};
                Image overlay = mask;
                std::vector<int64_t> counts(static_cast<size_t>(full.channels()), 0);
                for (int64_t p = 0; p < full.data.rows(); ++p) {
                    Eigen::Index id;
                    full.data.row(p).maxCoeff(&id);
                    ++counts[size_t(id)];
                    const auto colour = class_colour(id);
                    for (int c = 0; c < 3; ++c) {
                        mask.rgb[size_t(p * 3 + c)] = colour[size_t(c)];
                        overlay.rgb[size_t(p * 3 + c)] = uint8_t((int(img.rgb[size_t(p * 3 + c)]) + int(colour[size_t(c)]) + 1) / 2);
                    }
                }
                const std::string mask_path = output_path(o, o.files[b], ".mask.png"), overlay_path = output_path(o, o.files[b], ".overlay.png");
                if (!write_png(mask_path, mask)) throw Error("cannot write " + mask_path);
                if (!write_png(overlay_path, overlay)) throw Error("cannot write " + overlay_path);
                r["mask"] = mask_path;
                r["overlay"] = overlay_path;
                r["classes"] = Json::array();
                if (!o.json) std::printf("%s: wrote %s and %s\n", o.files[b].c_str(), mask_path.c_str(), overlay_path.c_str());
                std::vector<int64_t> order(counts.size());
                for (size_t i = 0; i < order.size(); ++i) order[i] = int64_t(i);
                std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return counts[size_t(x)] > counts[size_t(y)]; });
                for (int64_t id : order) {
                    if (counts[size_t(id)] == 0) break;
                    const double share = double(counts[size_t(id)]) / double(full.data.rows());
                    r["classes"].push_back({{"label", cfg.labels[size_t(id)]}, {"id", id}, {"share", share}});
                    if (!o.json) std::printf("  %-24s %6.2f%%\n", cfg.labels[size_t(id)].c_str(), 100 * share);
                }
                break;
            }
            case VisionHead::Base: {
                std::vector<float> embedding;
                if (out.count("pooler_output")) {
                    const auto& p = out.at("pooler_output");
                    embedding.assign(p.data.begin() + int64_t(b) * p.shape[1], p.data.begin() + int64_t(b + 1) * p.shape[1]);
                    r["pooling"] = "pooler_output";
                } else {  // the way the classification model pools
                    const auto& h = out.at("last_hidden_state");
                    const int64_t T = h.shape[1], H = h.shape[2];
                    embedding.assign(size_t(H), 0.0f);
                    const float* base = h.data.data() + int64_t(b) * T * H;
                    if (cfg.use_mean_pooling) {
                        for (int64_t t = 1; t < T; ++t) for (int64_t c = 0; c < H; ++c) embedding[size_t(c)] += base[t * H + c] / float(T - 1);
                        r["pooling"] = "mean of patch tokens";
                    } else {
                        embedding.assign(base, base + H);
                        r["pooling"] = "CLS token";
                    }
                }
                r["embedding"] = embedding;
                if (!o.json) {
                    std::printf("%s: embedding [%zu]:", o.files[b].c_str(), embedding.size());
                    for (size_t i = 0; i < std::min<size_t>(8, embedding.size()); ++i) std::printf(" %.4f", embedding[i]);
                    std::printf("%s\n", embedding.size() > 8 ? " ..." : "");
                }
                break;
            }
        }
        results.push_back(r);
    }
    if (o.json) std::printf("%s\n", Json{{"model", o.model}, {"model_class", pipe.file().model_class()}, {"results", results}}.dump(2).c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::guarded_main("d2v-vision", [&] { return run(parse(argc, argv)); });
}
