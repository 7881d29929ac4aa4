// Vision routes, by the head the file holds: /predict (top-k labels), /segment (class-id mask as a
// PNG, or each class's share of the pixels with ?format=json), /embed (base model). The image
// arrives as a multipart `file` (or a raw image/* body) and is decoded on a worker.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "d2v/d2v.hpp"
#include "d2v/model_file.h"
#include "d2v/vision/config.h"
#include "d2v/vision/image_io.h"
#include "server.h"

namespace server {
namespace {

const std::vector<std::string> kRawImage = {"image/", "application/octet-stream"};

d2v::RgbImage decode(const std::string& bytes) {
    return with_upload(bytes, [](const std::string& path) { return d2v::read_image(path); });
}

// Class ids as an 8-bit PNG, the id in each of R, G and B (so any channel reads back the id).
std::string mask_png(const d2v::ClassMap& mask) {
    d2v::vision::Image img{mask.width, mask.height, std::vector<uint8_t>(mask.ids.size() * 3)};
    for (size_t p = 0; p < mask.ids.size(); ++p) std::fill_n(img.rgb.begin() + std::ptrdiff_t(p * 3), 3, uint8_t(mask.ids[p]));
    const TempFile file("");
    if (!d2v::vision::write_png(file.path(), img)) throw std::runtime_error("cannot write the mask PNG");
    std::ifstream in(file.path(), std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

void add_vision_routes(const std::string& model_path, Routes& routes, Json& info) {
    auto model = std::make_shared<const d2v::Model>(model_path);
    const std::string cls = model->model_class();
    info["labels"] = model->labels();
    if (cls == "Data2VecVisionForImageClassification") {
        // [{"label", "score"}], best first (?top_k=N, default 5).
        routes["POST /predict"] = [model](const httplib::Request& req, Context& ctx) {
            std::string bytes = upload(req, "file", kRawImage);
            d2v::VisionOptions o;
            o.top_k = int_param(req, "top_k", 5, 1, 100000);
            return ctx.run(req, [model, bytes = std::move(bytes), o, &ctx] {
                ctx.metrics.items("/predict", 1);
                Json out = Json::array();
                const d2v::Result r = model->run_images({decode(bytes)}, o);  // named: the loop reads into it
                for (const auto& l : r.items[0].labels)
                    out.push_back({{"label", l.label}, {"score", l.score}});
                return json_reply(out);
            });
        };
    } else if (cls == "Data2VecVisionForSemanticSegmentation") {
        const size_t n_classes = model->labels().size();
        routes["POST /segment"] = [model, n_classes](const httplib::Request& req, Context& ctx) {
            std::string bytes = upload(req, "file", kRawImage);
            const std::string format = form_value(req, "format", "png");
            if (format != "png" && format != "json") throw HttpError(400, "bad_request", "format must be png or json");
            if (format == "png" && n_classes > 256)
                throw HttpError(400, "bad_request", "the model has more than 256 classes: ask for ?format=json");
            return ctx.run(req, [model, bytes = std::move(bytes), format, &ctx] {
                ctx.metrics.items("/segment", 1);
                const d2v::ClassMap mask = model->run_images({decode(bytes)}).items[0].mask;
                if (format == "png") return Reply{200, mask_png(mask), "image/png", {}};
                // As d2v-vision: [{"label", "id", "share"}], largest share first, absent classes left out.
                std::vector<int64_t> counts(model->labels().size(), 0);
                for (int32_t id : mask.ids) ++counts.at(size_t(id));
                std::vector<int64_t> order(counts.size());
                for (size_t i = 0; i < order.size(); ++i) order[i] = int64_t(i);
                std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return counts[size_t(x)] > counts[size_t(y)]; });
                Json classes = Json::array();
                for (int64_t id : order) {
                    if (counts[size_t(id)] == 0) break;
                    classes.push_back({{"label", model->labels()[size_t(id)]}, {"id", id},
                                       {"share", double(counts[size_t(id)]) / double(mask.ids.size())}});
                }
                return json_reply({{"width", mask.width}, {"height", mask.height}, {"classes", classes}});
            });
        };
    } else if (cls == "Data2VecVisionModel") {
        // [[float]]: pooler_output, else pooled as the classification model pools (mean of the
        // patch tokens, or the CLS token), as d2v-vision --json.
        const bool mean_pooling = d2v::vision::parse_vision_config(d2v::ModelFile(model_path).config()).use_mean_pooling;
        routes["POST /embed"] = [model, mean_pooling](const httplib::Request& req, Context& ctx) {
            std::string bytes = upload(req, "file", kRawImage);
            return ctx.run(req, [model, mean_pooling, bytes = std::move(bytes), &ctx] {
                ctx.metrics.items("/embed", 1);
                const d2v::Result r = model->run_images({decode(bytes)});
                if (r.outputs.count("pooler_output")) return json_reply(Json::array({r.outputs.at("pooler_output").data}));
                const auto& h = r.outputs.at("last_hidden_state");
                const int64_t T = h.shape[1], H = h.shape[2];
                std::vector<float> e(h.data.begin(), h.data.begin() + H);
                if (mean_pooling) {
                    std::fill(e.begin(), e.end(), 0.0f);
                    for (int64_t t = 1; t < T; ++t)
                        for (int64_t c = 0; c < H; ++c) e[size_t(c)] += h.data[size_t(t * H + c)] / float(T - 1);
                }
                return json_reply(Json::array({e}));
            });
        };
    } else {
        throw d2v::Error("d2v-server does not serve " + cls);
    }
}

}  // namespace server
