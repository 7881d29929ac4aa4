// d2v.h on top of d2v.hpp: every call catches everything, maps it to a status and keeps the message
// for d2v_last_error() in a thread-local string. A d2v_result owns the C++ Result and the C views
// (arrays of structs pointing into it) built once when it is made.
#include "d2v/d2v.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>
#include <stdexcept>

#include "d2v/d2v.hpp"

struct d2v_model {
    d2v::Model model;
};

struct d2v_result {
    d2v::Result result;
    std::vector<std::string> output_names;
    std::vector<d2v_array> outputs;
    std::vector<std::vector<d2v_label>> labels;              // per item
    std::vector<std::vector<std::vector<d2v_label>>> span_labels;  // per item, per span
    std::vector<std::vector<d2v_span>> spans;                // per item
};

namespace {

thread_local std::string last_error;

struct ArgumentError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

template <typename F>
d2v_status guarded(F&& body) {
    try {
        body();
        last_error.clear();
        return D2V_OK;
    } catch (const ArgumentError& e) {
        last_error = e.what();
        return D2V_ERROR_ARGUMENT;
    } catch (const std::bad_alloc&) {
        last_error = "out of memory";
        return D2V_ERROR_MEMORY;
    } catch (const std::runtime_error& e) {  // d2v::Error: bad file or input
        last_error = e.what();
        return D2V_ERROR_INPUT;
    } catch (const std::exception& e) {
        last_error = e.what();
        return D2V_ERROR_INTERNAL;
    } catch (...) {
        last_error = "unknown error";
        return D2V_ERROR_INTERNAL;
    }
}

void need(bool ok, const char* what) {
    if (!ok) throw ArgumentError(what);
}

const d2v::Model& model_of(const d2v_model* m, d2v::Modality wanted, d2v_result** result) {
    need(m != nullptr, "model is NULL");
    need(result != nullptr, "result is NULL");
    *result = nullptr;
    if (m->model.modality() != wanted) {
        static const char* const kNames[] = {"an audio", "a text", "a vision"};
        throw ArgumentError(m->model.model_class() + " is " + kNames[int(m->model.modality())] + " model; this call needs " +
                            kNames[int(wanted)] + " model");
    }
    return m->model;
}

std::vector<std::string> strings(const char* const* items, size_t count, const char* what) {
    need(count == 0 || items != nullptr, what);
    std::vector<std::string> out;
    for (size_t i = 0; i < count; ++i) {
        need(items[i] != nullptr, what);
        out.emplace_back(items[i]);
    }
    return out;
}

d2v_label c_label(const d2v::Label& l) { return {l.label.c_str(), l.id, l.score}; }

// Builds the C views once; the pointers stay valid because nothing is resized afterwards.
d2v_result* wrap(d2v::Result r) {
    auto* out = new d2v_result{std::move(r), {}, {}, {}, {}, {}};
    for (const auto& [name, a] : out->result.outputs) {
        out->outputs.push_back({name.c_str(), a.data.data(), a.shape.data(), a.shape.size(), a.data.size(), a.is_integer ? 1 : 0});
    }
    const auto& items = out->result.items;
    out->labels.resize(items.size());
    out->span_labels.resize(items.size());
    out->spans.resize(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        for (const auto& l : items[i].labels) out->labels[i].push_back(c_label(l));
        out->span_labels[i].resize(items[i].spans.size());
        for (size_t s = 0; s < items[i].spans.size(); ++s)
            for (const auto& l : items[i].spans[s].labels) out->span_labels[i][s].push_back(c_label(l));
        for (size_t s = 0; s < items[i].spans.size(); ++s) {
            const auto& span = items[i].spans[s];
            out->spans[i].push_back({span.start, span.end, span.text.c_str(), out->span_labels[i][s].data(), out->span_labels[i][s].size()});
        }
    }
    return out;
}

d2v::AudioOptions audio_options(const d2v_audio_params* p) {
    const d2v_audio_params d = p ? *p : d2v_audio_default_params();
    std::vector<std::string> words;
    std::istringstream in(d.words ? d.words : "");
    for (std::string w; in >> w;) words.push_back(w);
    return {d.top_k, d.output_hidden_states != 0, d.output_attentions != 0, words};
}

d2v::VisionOptions vision_options(const d2v_vision_params* p) {
    const d2v_vision_params d = p ? *p : d2v_vision_default_params();
    return {d.top_k, d.output_hidden_states != 0, d.output_attentions != 0};
}

}  // namespace

extern "C" {

const char* d2v_last_error(void) { return last_error.c_str(); }
const char* d2v_version(void) { return D2V_VERSION_STRING; }

d2v_status d2v_set_num_threads(int n) {
    return guarded([&] {
        need(n >= 1, "the thread count must be at least 1");
        d2v::set_num_threads(n);
    });
}

d2v_status d2v_model_load(const char* path, d2v_model** model) {
    return guarded([&] {
        need(model != nullptr, "model is NULL");
        *model = nullptr;
        need(path != nullptr, "path is NULL");
        *model = new d2v_model{d2v::Model(path)};
    });
}

void d2v_model_free(d2v_model* model) { delete model; }

// The getters cannot fail on a loaded model; on NULL they answer "nothing" instead of crashing.
d2v_modality d2v_model_modality(const d2v_model* m) { return m ? d2v_modality(int(m->model.modality())) : D2V_AUDIO; }
const char* d2v_model_class(const d2v_model* m) { return m ? m->model.model_class().c_str() : ""; }
int64_t d2v_model_sampling_rate(const d2v_model* m) { return m ? m->model.sampling_rate() : 0; }
size_t d2v_model_num_labels(const d2v_model* m) { return m ? m->model.labels().size() : 0; }
const char* d2v_model_label(const d2v_model* m, size_t id) {
    if (!m) return nullptr;
    const auto& labels = m->model.labels();
    return id < labels.size() ? labels[id].c_str() : nullptr;
}

d2v_audio_params d2v_audio_default_params(void) {
    const d2v::AudioOptions o;
    return {o.top_k, o.hidden_states, o.attentions, nullptr};
}

d2v_text_params d2v_text_default_params(void) {
    const d2v::TextOptions o;
    return {o.top_k, o.truncate, o.max_answer_length, o.max_new_tokens, o.sample, o.sample_top_k,
            o.top_p,  o.temperature, o.seed, o.hidden_states, o.attentions};
}

d2v_vision_params d2v_vision_default_params(void) {
    const d2v::VisionOptions o;
    return {o.top_k, o.hidden_states, o.attentions};
}

d2v_status d2v_run_audio(const d2v_model* m, const float* const* waves, const size_t* lengths, size_t count,
                         const d2v_audio_params* params, d2v_result** result) {
    return guarded([&] {
        const d2v::Model& model = model_of(m, d2v::Modality::Audio, result);
        need(count > 0 && waves != nullptr && lengths != nullptr, "give at least one wave with its length");
        std::vector<std::vector<float>> batch;
        for (size_t i = 0; i < count; ++i) {
            need(waves[i] != nullptr || lengths[i] == 0, "a wave is NULL");
            batch.emplace_back(waves[i], waves[i] + lengths[i]);
        }
        *result = wrap(model.run_audio(batch, audio_options(params)));
    });
}

d2v_status d2v_run_audio_files(const d2v_model* m, const char* const* paths, size_t count, const d2v_audio_params* params,
                               d2v_result** result) {
    return guarded([&] {
        const d2v::Model& model = model_of(m, d2v::Modality::Audio, result);
        need(count > 0, "give at least one file");
        *result = wrap(model.run_audio_files(strings(paths, count, "a path is NULL"), audio_options(params)));
    });
}

d2v_status d2v_run_text(const d2v_model* m, const d2v_text_input* input, const d2v_text_params* params, d2v_result** result) {
    return guarded([&] {
        const d2v::Model& model = model_of(m, d2v::Modality::Text, result);
        need(input != nullptr, "input is NULL");
        auto text = [](const char* s) { return s ? std::string(s) : std::string(); };
        d2v::TextInput in{text(input->text), text(input->pair), text(input->question), text(input->context),
                          strings(input->choices, input->num_choices, "a choice is NULL")};
        const d2v_text_params p = params ? *params : d2v_text_default_params();
        d2v::TextOptions o;
        o.top_k = p.top_k;
        o.truncate = p.truncate != 0;
        o.max_answer_length = p.max_answer_length;
        o.max_new_tokens = p.max_new_tokens;
        o.sample = p.sample != 0;
        o.sample_top_k = p.sample_top_k;
        o.top_p = p.top_p;
        o.temperature = p.temperature;
        o.seed = p.seed;
        o.hidden_states = p.output_hidden_states != 0;
        o.attentions = p.output_attentions != 0;
        *result = wrap(model.run_text(in, o));
    });
}

d2v_status d2v_run_image_files(const d2v_model* m, const char* const* paths, size_t count, const d2v_vision_params* params,
                               d2v_result** result) {
    return guarded([&] {
        const d2v::Model& model = model_of(m, d2v::Modality::Vision, result);
        need(count > 0, "give at least one file");
        *result = wrap(model.run_image_files(strings(paths, count, "a path is NULL"), vision_options(params)));
    });
}

d2v_status d2v_read_image(const char* path, uint8_t** rgb, int64_t* width, int64_t* height) {
    return guarded([&] {
        need(path != nullptr && rgb != nullptr && width != nullptr && height != nullptr, "an argument is NULL");
        *rgb = nullptr;
        *width = *height = 0;
        const d2v::RgbImage image = d2v::read_image(path);
        auto* copy = static_cast<uint8_t*>(std::malloc(image.rgb.size()));
        if (!copy) throw std::bad_alloc();
        std::memcpy(copy, image.rgb.data(), image.rgb.size());
        *rgb = copy;
        *width = image.width;
        *height = image.height;
    });
}

void d2v_free(void* p) { std::free(p); }

d2v_status d2v_run_image_rgb(const d2v_model* m, const uint8_t* rgb, int64_t width, int64_t height,
                             const d2v_vision_params* params, d2v_result** result) {
    return guarded([&] {
        const d2v::Model& model = model_of(m, d2v::Modality::Vision, result);
        need(rgb != nullptr, "rgb is NULL");
        need(width > 0 && height > 0 && width <= (int64_t(1) << 20) && height <= (int64_t(1) << 20),
             "width and height must be in 1 .. 2^20");
        d2v::RgbImage image{width, height, std::vector<uint8_t>(rgb, rgb + width * height * 3)};
        *result = wrap(model.run_images({std::move(image)}, vision_options(params)));
    });
}

size_t d2v_result_num_outputs(const d2v_result* r) { return r ? r->outputs.size() : 0; }

d2v_status d2v_result_output(const d2v_result* r, size_t index, d2v_array* array) {
    return guarded([&] {
        need(r != nullptr && array != nullptr, "result or array is NULL");
        need(index < r->outputs.size(), "output index out of range");
        *array = r->outputs[index];
    });
}

d2v_status d2v_result_find_output(const d2v_result* r, const char* name, d2v_array* array) {
    return guarded([&] {
        need(r != nullptr && array != nullptr && name != nullptr, "result, name or array is NULL");
        for (const auto& a : r->outputs)
            if (std::strcmp(a.name, name) == 0) {
                *array = a;
                return;
            }
        throw ArgumentError(std::string("no output named '") + name + "'");
    });
}

size_t d2v_result_num_items(const d2v_result* r) { return r ? r->result.items.size() : 0; }

d2v_status d2v_result_item(const d2v_result* r, size_t index, d2v_item* item) {
    return guarded([&] {
        need(r != nullptr && item != nullptr, "result or item is NULL");
        need(index < r->result.items.size(), "item index out of range");
        const d2v::Item& it = r->result.items[index];
        auto or_null = [](const auto& v) { return v.empty() ? nullptr : v.data(); };
        *item = d2v_item{it.text.c_str(),
                         or_null(r->labels[index]), r->labels[index].size(),
                         or_null(r->spans[index]), r->spans[index].size(),
                         or_null(it.mask.ids), it.mask.width, it.mask.height,
                         or_null(it.token_ids), it.token_ids.size()};
    });
}

double d2v_result_seconds_per_frame(const d2v_result* r) { return r ? r->result.seconds_per_frame : 0.0; }
size_t d2v_result_num_notes(const d2v_result* r) { return r ? r->result.notes.size() : 0; }
const char* d2v_result_note(const d2v_result* r, size_t index) {
    return r && index < r->result.notes.size() ? r->result.notes[index].c_str() : nullptr;
}

void d2v_result_free(d2v_result* r) { delete r; }

}  // extern "C"
