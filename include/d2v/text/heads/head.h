// A text head = the backbone's outputs in, Transformers' output fields out (plus the loss when
// labels are given). One header per head next to this one.
#pragma once
#include "d2v/losses.h"
#include "d2v/text/model.h"

namespace d2v::text {

class TextHeadModule {
public:
    virtual ~TextHeadModule() = default;
    // labels: "labels" / "start_positions" / "end_positions" as Transformers names them, or null.
    virtual void apply(const TextBatch& batch, const TextModelOutput& base, const NamedOutputs* labels,
                       NamedOutputs& out) const = 0;
};

inline const NdArray* find_label(const NamedOutputs* labels, const std::string& name) {
    if (!labels) return nullptr;
    auto it = labels->find(name);
    return it == labels->end() ? nullptr : &it->second;
}



// Rows of all items stacked: [B * T, C].
inline Matrix concat_rows(const std::vector<Matrix>& items) {
    int64_t rows = 0;
    for (const auto& m : items) rows += m.rows();
    Matrix all(rows, items.empty() ? 0 : items[0].cols());
    int64_t r = 0;
    for (const auto& m : items) {
        all.middleRows(r, m.rows()) = m;
        r += m.rows();
    }
    return all;
}

}  // namespace d2v::text
