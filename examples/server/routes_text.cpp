// Text routes, by the head the file holds. Request and response shapes follow Hugging Face
// text-embeddings-inference (/embed, /predict, /tokenize: {"inputs": ...}), its text-generation
// sibling (/generate: {"inputs", "parameters"} -> {"generated_text"}), the Transformers pipelines'
// field names for fill-mask and question answering, and OpenAI for /v1/embeddings.
// As TEI, an input longer than the model's maximum is refused (422) unless "truncate": true.
#include <cmath>

#include "d2v/d2v.hpp"
#include "d2v/model_file.h"
#include "d2v/text/config.h"
#include "d2v/text/tokenizer.h"
#include "server.h"

namespace server {
namespace {

// TEI's default --max-client-batch-size: a bound on the work one request can queue.
constexpr size_t kMaxBatch = 32;

struct TextService {
    std::shared_ptr<const d2v::Model> model;
    std::shared_ptr<const d2v::text::BpeTokenizer> tokenizer;
    int64_t max_length = 0;
    std::string path;
};

// The tokenizer the converter packed into the file (the facade keeps its own inside the model).
std::shared_ptr<const d2v::text::BpeTokenizer> packed_tokenizer(const d2v::ModelFile& file) {
    const std::string tokenizer_text = file.metadata_string("d2v.tokenizer_json");
    if (!file.vocab().is_object() && tokenizer_text.empty()) return nullptr;
    const Json tokenizer_json = tokenizer_text.empty() ? Json() : Json::parse(tokenizer_text);
    return std::make_shared<const d2v::text::BpeTokenizer>(file.vocab(), file.metadata_string("d2v.merges_txt"), tokenizer_json,
                                                          file.tokenizer_config());
}

std::string string_field(const Json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) throw HttpError(400, "bad_request", std::string("'") + name + "' must be a string");
    return it->get<std::string>();
}

bool bool_field(const Json& j, const char* name, bool fallback) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw HttpError(400, "bad_request", std::string("'") + name + "' must be true or false");
    return it->get<bool>();
}

double number_field(const Json& j, const char* name, double fallback, double low, double high) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_number() || !(it->get<double>() >= low && it->get<double>() <= high))
        throw HttpError(400, "bad_request", std::string("'") + name + "' must be a number in [" + std::to_string(low) + ", " +
                                                std::to_string(high) + "]");
    return it->get<double>();
}

// "inputs": a string or a list of strings (a batch).
std::vector<std::string> string_inputs(const Json& body, const char* field = "inputs") {
    auto it = body.find(field);
    if (it == body.end()) throw HttpError(400, "bad_request", std::string("missing '") + field + "'");
    std::vector<std::string> out;
    if (it->is_string()) out.push_back(it->get<std::string>());
    else if (it->is_array() && !it->empty()) {
        for (const auto& s : *it) {
            if (!s.is_string()) throw HttpError(400, "bad_request", std::string("'") + field + "' must be a string or a list of strings");
            out.push_back(s.get<std::string>());
        }
    } else throw HttpError(400, "bad_request", std::string("'") + field + "' must be a string or a non-empty list of strings");
    if (out.size() > kMaxBatch)
        throw HttpError(422, "validation", "batch of " + std::to_string(out.size()) + " inputs is larger than " + std::to_string(kMaxBatch));
    return out;
}

d2v::TextOptions text_options(const Json& body) {
    d2v::TextOptions o;
    o.truncate = bool_field(body, "truncate", false);
    return o;
}

// The CLI's embedding: pooler_output where the checkpoint has a pooler, else the mean of
// last_hidden_state over the tokens.
std::vector<float> embedding_of(const d2v::Result& r) {
    if (r.outputs.count("pooler_output")) return r.outputs.at("pooler_output").data;
    const auto& h = r.outputs.at("last_hidden_state");
    const int64_t T = h.shape[1], H = h.shape[2];
    std::vector<float> e(size_t(H), 0.0f);
    for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < H; ++c) e[size_t(c)] += h.data[size_t(t * H + c)] / float(T);
    return e;
}

void normalize(std::vector<float>& v) {
    double norm = 0;
    for (float x : v) norm += double(x) * x;
    norm = std::sqrt(norm);
    if (norm > 0)
        for (float& x : v) x = float(double(x) / norm);
}

Json labels_json(const std::vector<d2v::Label>& labels) {
    Json out = Json::array();
    for (const auto& l : labels) out.push_back({{"label", l.label}, {"score", l.score}});
    return out;
}

// Runs each input of the batch (one forward pass each; see README: no cross-request batching).
template <typename PerInput>
Json for_each_input(const std::vector<std::string>& inputs, PerInput&& per_input) {
    Json out = Json::array();
    for (const auto& s : inputs) out.push_back(per_input(s));
    return out;
}

}  // namespace

void add_text_routes(const std::string& model_path, Routes& routes, Json& info) {
    auto svc = std::make_shared<TextService>();
    svc->path = model_path;
    svc->model = std::make_shared<const d2v::Model>(model_path);
    {
        const d2v::ModelFile file(model_path);
        svc->tokenizer = packed_tokenizer(file);
        const auto cfg = d2v::text::parse_text_config(file.config());
        svc->max_length = cfg.max_position_embeddings - cfg.pad_token_id - 1;
        info["max_input_length"] = svc->max_length;
    }
    const std::string cls = svc->model->model_class();
    const int n_labels = int(svc->model->labels().size());

    routes["POST /tokenize"] = [svc](const httplib::Request& req, Context& ctx) {
        if (!svc->tokenizer) throw HttpError(422, "validation", "model file has no tokenizer");
        const Json body = json_body(req);
        const auto inputs = string_inputs(body);
        const bool special = bool_field(body, "add_special_tokens", true);
        return ctx.run(req, [svc, inputs, special] {
            Json out = for_each_input(inputs, [&](const std::string& text) {
                d2v::text::EncodeOptions e;
                e.add_special_tokens = special;
                const auto enc = svc->tokenizer->encode(text, e);
                Json tokens = Json::array();
                for (size_t i = 0; i < enc.size(); ++i) {
                    const auto [start, stop] = enc.offsets[i];
                    const bool is_special = svc->tokenizer->is_special(enc.input_ids[i]);
                    tokens.push_back({{"id", enc.input_ids[i]}, {"text", svc->tokenizer->id_to_token(enc.input_ids[i])},
                                      {"special", is_special}, {"start", is_special ? Json() : Json(start)},
                                      {"stop", is_special ? Json() : Json(stop)}});
                }
                return tokens;
            });
            return json_reply(out);
        });
    };

    if (cls == "Data2VecTextModel") {
        auto embed = [svc](const std::vector<std::string>& inputs, const d2v::TextOptions& o, bool norm, int64_t* tokens) {
            return for_each_input(inputs, [&](const std::string& text) {
                const d2v::Result r = svc->model->run_text({text, "", "", "", {}}, o);
                if (tokens) *tokens += r.outputs.at("input_ids").shape[1];
                std::vector<float> e = embedding_of(r);
                if (norm) normalize(e);
                return Json(e);
            });
        };
        routes["POST /embed"] = [embed](const httplib::Request& req, Context& ctx) {
            const Json body = json_body(req);
            const auto inputs = string_inputs(body);
            const auto o = text_options(body);
            const bool norm = bool_field(body, "normalize", true);
            return ctx.run(req, [embed, inputs, o, norm, &ctx] {
                ctx.metrics.items("/embed", int64_t(inputs.size()));
                return json_reply(embed(inputs, o, norm, nullptr));
            });
        };
        routes["POST /v1/embeddings"] = [embed](const httplib::Request& req, Context& ctx) {
            const Json body = json_body(req);
            const auto inputs = string_inputs(body, "input");
            const std::string name = body.value("model", std::string("data2vec"));
            auto o = text_options(body);
            o.truncate = true;  // OpenAI's endpoint has no such switch; long input is cut
            return ctx.run(req, [embed, inputs, o, name, &ctx] {
                ctx.metrics.items("/v1/embeddings", int64_t(inputs.size()));
                int64_t tokens = 0;
                const Json vectors = embed(inputs, o, true, &tokens);
                Json data = Json::array();
                for (size_t i = 0; i < vectors.size(); ++i)
                    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", vectors[i]}});
                return json_reply({{"object", "list"}, {"data", data}, {"model", name},
                                   {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
            });
        };
    } else if (cls == "Data2VecTextForSequenceClassification") {
        // {"inputs": "text"} | {"inputs": ["text", "pair"]} | {"inputs": [["text", "pair"], ["text"], ...]}
        routes["POST /predict"] = [svc, n_labels](const httplib::Request& req, Context& ctx) {
            const Json body = json_body(req);
            auto o = text_options(body);
            o.top_k = std::max(n_labels, 1);
            const auto it = body.find("inputs");
            auto as_input = [](const Json& j) {
                if (j.is_string()) return d2v::TextInput{j.get<std::string>(), "", "", "", {}};
                if (j.is_array() && (j.size() == 1 || j.size() == 2) && j[0].is_string() && j.back().is_string())
                    return d2v::TextInput{j[0].get<std::string>(), j.size() == 2 ? j[1].get<std::string>() : "", "", "", {}};
                throw HttpError(400, "bad_request", "'inputs' must be a string, [text, pair], or a list of those");
            };
            if (it == body.end()) throw HttpError(400, "bad_request", "missing 'inputs'");
            std::vector<d2v::TextInput> inputs;
            const bool batch = it->is_array() && !it->empty() && it->at(0).is_array();
            if (batch)
                for (const auto& j : *it) inputs.push_back(as_input(j));
            else inputs.push_back(as_input(*it));
            if (inputs.size() > kMaxBatch) throw HttpError(422, "validation", "batch larger than " + std::to_string(kMaxBatch));
            return ctx.run(req, [svc, inputs, o, batch, &ctx] {
                ctx.metrics.items("/predict", int64_t(inputs.size()));
                Json out = Json::array();
                for (const auto& in : inputs) out.push_back(labels_json(svc->model->run_text(in, o).items[0].labels));
                return json_reply(batch ? out : out[0]);
            });
        };
    } else if (cls == "Data2VecTextForTokenClassification") {
        routes["POST /predict"] = [svc](const httplib::Request& req, Context& ctx) {
            const Json body = json_body(req);
            const auto inputs = string_inputs(body);
            const auto o = text_options(body);
            const bool batch = !body.at("inputs").is_string();
            return ctx.run(req, [svc, inputs, o, batch, &ctx] {
                ctx.metrics.items("/predict", int64_t(inputs.size()));
                Json out = for_each_input(inputs, [&](const std::string& text) {
                    Json words = Json::array();
                    const d2v::Result r = svc->model->run_text({text, "", "", "", {}}, o);  // named: the loop reads into it
                    for (const auto& s : r.items[0].spans)
                        words.push_back({{"word", s.text}, {"label", s.labels[0].label}, {"score", s.labels[0].score},
                                         {"start", char_offset(text, s.start)}, {"end", char_offset(text, s.end)}});
                    return words;
                });
                return json_reply(batch ? out : out[0]);
            });
        };
    } else if (cls == "Data2VecTextForMaskedLM") {
        // Transformers' fill-mask pipeline: [{"score", "token", "token_str"}] per <mask>.
        routes["POST /fill-mask"] = [svc](const httplib::Request& req, Context& ctx) {
            const Json body = json_body(req);
            const auto inputs = string_inputs(body);
            auto o = text_options(body);
            o.top_k = int(number_field(body, "top_k", 5, 1, 100));
            const bool batch = !body.at("inputs").is_string();
            return ctx.run(req, [svc, inputs, o, batch, &ctx] {
                ctx.metrics.items("/fill-mask", int64_t(inputs.size()));
                Json out = for_each_input(inputs, [&](const std::string& text) {
                    Json masks = Json::array();
                    const d2v::Result r = svc->model->run_text({text, "", "", "", {}}, o);  // named: the loop reads into it
                    for (const auto& s : r.items[0].spans) {
                        Json preds = Json::array();
                        for (const auto& l : s.labels) preds.push_back({{"score", l.score}, {"token", l.id}, {"token_str", l.label}});
                        masks.push_back(preds);
                    }
                    return masks.size() == 1 ? masks[0] : masks;
                });
                return json_reply(batch ? out : out[0]);
            });
        };
    } else if (cls == "Data2VecTextForQuestionAnswering") {
        // {"question", "context"} -> {"answer", "score", "start", "end"} (character offsets, as Transformers).
        routes["POST /qa"] = [svc](const httplib::Request& req, Context& ctx) {
            const Json body = json_body(req);
            d2v::TextInput in{"", "", string_field(body, "question"), string_field(body, "context"), {}};
            auto o = text_options(body);
            o.truncate = true;  // the context is cut, never the question (Transformers' only_second)
            o.max_answer_length = int64_t(number_field(body, "max_answer_len", 30, 1, 512));
            return ctx.run(req, [svc, in, o, &ctx] {
                ctx.metrics.items("/qa", 1);
                const d2v::Item item = svc->model->run_text(in, o).items[0];
                const d2v::Span& s = item.spans.at(0);
                return json_reply({{"answer", item.text}, {"score", s.labels.at(0).score},
                                   {"start", char_offset(in.context, s.start)}, {"end", char_offset(in.context, s.end)}});
            });
        };
    } else if (cls == "Data2VecTextForMultipleChoice") {
        // {"inputs": prompt, "choices": [ending, ...]} -> [{"label": ending, "score"}] in the given order.
        routes["POST /choose"] = [svc](const httplib::Request& req, Context& ctx) {
            const Json body = json_body(req);
            d2v::TextInput in{string_field(body, "inputs"), "", "", "", {}};
            in.choices = string_inputs(body, "choices");
            const auto o = text_options(body);
            return ctx.run(req, [svc, in, o, &ctx] {
                ctx.metrics.items("/choose", 1);
                return json_reply(labels_json(svc->model->run_text(in, o).items[0].labels));
            });
        };
    } else if (cls == "Data2VecTextForCausalLM") {
        routes["POST /generate"] = [svc](const httplib::Request& req, Context& ctx) {
            const Json body = json_body(req);
            d2v::TextInput in{string_field(body, "inputs"), "", "", "", {}};
            const Json p = body.value("parameters", Json::object());
            if (!p.is_object()) throw HttpError(400, "bad_request", "'parameters' must be an object");
            d2v::TextOptions o;
            o.max_new_tokens = int64_t(number_field(p, "max_new_tokens", 20, 1, double(svc->max_length)));
            o.sample = bool_field(p, "do_sample", false);
            o.sample_top_k = int64_t(number_field(p, "top_k", 0, 0, 1e6));
            o.top_p = float(number_field(p, "top_p", 1.0, 1e-6, 1.0));
            o.temperature = float(number_field(p, "temperature", 1.0, 1e-6, 100.0));
            o.seed = uint64_t(number_field(p, "seed", 0, 0, 9007199254740992.0));
            return ctx.run(req, [svc, in, o, &ctx] {
                ctx.metrics.items("/generate", 1);
                const d2v::Item item = svc->model->run_text(in, o).items[0];
                return json_reply({{"generated_text", item.text}, {"generated_ids", item.token_ids}});
            });
        };
    } else {
        throw d2v::Error("d2v-server does not serve " + cls);
    }
    info["labels"] = svc->model->labels();
}

}  // namespace server
