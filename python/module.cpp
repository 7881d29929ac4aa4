// d2v._d2v: the C++ facade (d2v/d2v.hpp) for Python. Inputs are copied out of numpy while the GIL is
// held; the model then runs with the GIL released, so Python threads sharing one Model run in
// parallel. Results come back as plain dicts of numpy arrays / lists (python/d2v/__init__.py
// dresses them up). Library errors surface as RuntimeError with the library's message.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "d2v/d2v.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

// A facade array as a numpy array that owns its buffer (int64 for integer fields, as Transformers).
nb::object to_numpy(d2v::Array&& a) {
    const std::vector<size_t> shape(a.shape.begin(), a.shape.end());
    if (a.is_integer) {
        auto* values = new std::vector<int64_t>(a.data.begin(), a.data.end());
        nb::capsule owner(values, [](void* p) noexcept { delete static_cast<std::vector<int64_t>*>(p); });
        return nb::ndarray<nb::numpy, int64_t>(values->data(), shape.size(), shape.data(), owner).cast();
    }
    auto* values = new std::vector<float>(std::move(a.data));
    nb::capsule owner(values, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
    return nb::ndarray<nb::numpy, float>(values->data(), shape.size(), shape.data(), owner).cast();
}

nb::list labels_list(const std::vector<d2v::Label>& labels) {
    nb::list out;
    for (const auto& l : labels) out.append(nb::make_tuple(l.label, l.id, l.score));
    return out;
}

nb::dict to_python(d2v::Result&& r) {
    nb::dict outputs;
    for (auto& [name, array] : r.outputs) outputs[name.c_str()] = to_numpy(std::move(array));
    nb::list items;
    for (auto& item : r.items) {
        nb::dict d;
        d["text"] = item.text;
        d["labels"] = labels_list(item.labels);
        nb::list spans;
        for (const auto& s : item.spans) {
            nb::dict span;
            span["start"] = s.start;
            span["end"] = s.end;
            span["text"] = s.text;
            span["labels"] = labels_list(s.labels);
            spans.append(span);
        }
        d["spans"] = spans;
        if (item.mask.width > 0) {
            auto* ids = new std::vector<int32_t>(std::move(item.mask.ids));
            nb::capsule owner(ids, [](void* p) noexcept { delete static_cast<std::vector<int32_t>*>(p); });
            const size_t shape[2] = {size_t(item.mask.height), size_t(item.mask.width)};
            d["mask"] = nb::ndarray<nb::numpy, int32_t>(ids->data(), 2, shape, owner).cast();
        } else {
            d["mask"] = nb::none();
        }
        d["token_ids"] = item.token_ids;
        items.append(d);
    }
    nb::dict result;
    result["outputs"] = outputs;
    result["items"] = items;
    result["notes"] = r.notes;
    result["seconds_per_frame"] = r.seconds_per_frame;
    return result;
}

using Wave = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Picture = nb::ndarray<const uint8_t, nb::ndim<3>, nb::c_contig, nb::device::cpu>;

}  // namespace

NB_MODULE(_d2v, m) {
    m.attr("__version__") = D2V_VERSION_STRING;
    m.def("set_num_threads", [](int n) {
        if (n < 1) throw nb::value_error("the thread count must be at least 1");
        d2v::set_num_threads(n);
    }, "n"_a);
    m.def("read_image", [](const std::string& path) {
        d2v::RgbImage img;
        {
            nb::gil_scoped_release unlocked;
            img = d2v::read_image(path);
        }
        auto* rgb = new std::vector<uint8_t>(std::move(img.rgb));
        nb::capsule owner(rgb, [](void* p) noexcept { delete static_cast<std::vector<uint8_t>*>(p); });
        const size_t shape[3] = {size_t(img.height), size_t(img.width), 3};
        return nb::ndarray<nb::numpy, uint8_t>(rgb->data(), 3, shape, owner).cast();
    }, "path"_a);

    nb::class_<d2v::Model>(m, "Model")
        .def("__init__", [](d2v::Model* self, const std::string& path) {
            nb::gil_scoped_release unlocked;
            new (self) d2v::Model(path);
        }, "path"_a)
        .def_prop_ro("modality", [](const d2v::Model& model) {
            static const char* const kNames[] = {"audio", "text", "vision"};
            return std::string(kNames[int(model.modality())]);
        })
        .def_prop_ro("model_class", &d2v::Model::model_class)
        .def_prop_ro("sampling_rate", &d2v::Model::sampling_rate)
        .def_prop_ro("labels", &d2v::Model::labels)
        .def("run_audio", [](const d2v::Model& model, const std::vector<Wave>& waves, int top_k, bool hidden_states, bool attentions,
                             const std::vector<std::string>& words) {
            std::vector<std::vector<float>> copies;
            for (const auto& w : waves) copies.emplace_back(w.data(), w.data() + w.shape(0));
            d2v::Result r;
            {
                nb::gil_scoped_release unlocked;
                r = model.run_audio(copies, {top_k, hidden_states, attentions, words});
            }
            return to_python(std::move(r));
        }, "waves"_a, "top_k"_a = 5, "hidden_states"_a = false, "attentions"_a = false, "words"_a = std::vector<std::string>{})
        .def("run_audio_files", [](const d2v::Model& model, const std::vector<std::string>& paths, int top_k, bool hidden_states,
                                   bool attentions, const std::vector<std::string>& words) {
            d2v::Result r;
            {
                nb::gil_scoped_release unlocked;
                r = model.run_audio_files(paths, {top_k, hidden_states, attentions, words});
            }
            return to_python(std::move(r));
        }, "paths"_a, "top_k"_a = 5, "hidden_states"_a = false, "attentions"_a = false, "words"_a = std::vector<std::string>{})
        .def("run_text", [](const d2v::Model& model, const std::string& text, const std::string& pair, const std::string& question,
                            const std::string& context, const std::vector<std::string>& choices, int top_k, bool truncate,
                            int64_t max_answer_length, int64_t max_new_tokens, bool sample, int64_t sample_top_k, float top_p,
                            float temperature, uint64_t seed, bool hidden_states, bool attentions) {
            d2v::TextOptions o;
            o.top_k = top_k;
            o.truncate = truncate;
            o.max_answer_length = max_answer_length;
            o.max_new_tokens = max_new_tokens;
            o.sample = sample;
            o.sample_top_k = sample_top_k;
            o.top_p = top_p;
            o.temperature = temperature;
            o.seed = seed;
            o.hidden_states = hidden_states;
            o.attentions = attentions;
            const d2v::TextInput input{text, pair, question, context, choices};
            d2v::Result r;
            {
                nb::gil_scoped_release unlocked;
                r = model.run_text(input, o);
            }
            return to_python(std::move(r));
        }, "text"_a = "", "pair"_a = "", "question"_a = "", "context"_a = "", "choices"_a = std::vector<std::string>{},
           "top_k"_a = 5, "truncate"_a = true, "max_answer_length"_a = 30, "max_new_tokens"_a = 20, "sample"_a = false,
           "sample_top_k"_a = 0, "top_p"_a = 1.0f, "temperature"_a = 1.0f, "seed"_a = 0, "hidden_states"_a = false,
           "attentions"_a = false)
        .def("run_images", [](const d2v::Model& model, const std::vector<Picture>& pictures, int top_k, bool hidden_states,
                              bool attentions) {
            std::vector<d2v::RgbImage> images;
            for (const auto& p : pictures) {
                if (p.shape(2) != 3) throw nb::value_error("images must be H x W x 3 (RGB) uint8 arrays");
                images.push_back({int64_t(p.shape(1)), int64_t(p.shape(0)), std::vector<uint8_t>(p.data(), p.data() + p.size())});
            }
            d2v::Result r;
            {
                nb::gil_scoped_release unlocked;
                r = model.run_images(images, {top_k, hidden_states, attentions});
            }
            return to_python(std::move(r));
        }, "images"_a, "top_k"_a = 5, "hidden_states"_a = false, "attentions"_a = false)
        .def("run_image_files", [](const d2v::Model& model, const std::vector<std::string>& paths, int top_k, bool hidden_states,
                                   bool attentions) {
            d2v::Result r;
            {
                nb::gil_scoped_release unlocked;
                r = model.run_image_files(paths, {top_k, hidden_states, attentions});
            }
            return to_python(std::move(r));
        }, "paths"_a, "top_k"_a = 5, "hidden_states"_a = false, "attentions"_a = false);
}
