// The byte-level BPE tokenizer. First byte even: the fixture tokenizer (RoBERTa-style, built once)
// encodes the rest as text / a text pair, and decodes it as ids. Odd: a tokenizer is built from the
// input itself — vocab.json, merges.txt, tokenizer.json, tokenizer_config.json and a text, separated
// by "\n#--#\n" — and encodes and decodes the text.
#include <fstream>
#include <optional>
#include <sstream>

#include "d2v/text/tokenizer.h"
#include "fuzz_util.h"

namespace {

std::string read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

const d2v::text::BpeTokenizer& fixture_tokenizer() {
    static const d2v::text::BpeTokenizer tok = [] {
        const std::string dir = std::string(D2V_FIXTURES) + "/text/tokenizer/";
        return d2v::text::BpeTokenizer(d2v::Json::parse(read(dir + "vocab.json")), read(dir + "merges.txt"),
                                       d2v::Json::parse(read(dir + "tokenizer.json")),
                                       d2v::Json::parse(read(dir + "tokenizer_config.json")));
    }();
    return tok;
}

d2v::Json parse_or_null(const std::string& s) {
    d2v::Json j = d2v::Json::parse(s, nullptr, /*allow_exceptions=*/false);
    return j.is_discarded() ? d2v::Json() : j;
}

void exercise(const d2v::text::BpeTokenizer& tok, const std::string& a, const std::string& b) {
    d2v::text::EncodeOptions options;
    options.max_length = a.size() % 7 == 0 ? 0 : int64_t(a.size() % 37);
    const char* modes[] = {"longest_first", "only_first", "only_second", "none"};
    options.truncation = modes[b.size() % 4];
    fuzz::expect_only_d2v_errors([&] { tok.encode(a, options); });
    fuzz::expect_only_d2v_errors([&] { tok.encode_pair(a, b, options); });
    std::vector<int64_t> ids;
    for (size_t i = 0; i + 1 < a.size(); i += 2) ids.push_back(int64_t(uint8_t(a[i])) * 256 + uint8_t(a[i + 1]) - 4096);
    fuzz::expect_only_d2v_errors([&] { tok.decode(ids, b.size() % 2 == 0); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
    if (data[0] % 2 == 0) {
        const size_t half = rest.size() / 2;
        exercise(fixture_tokenizer(), rest.substr(0, half), rest.substr(half));
        return 0;
    }
    std::vector<std::string> parts;
    const std::string sep = "\n#--#\n";
    for (size_t at = 0;;) {
        const size_t next = rest.find(sep, at);
        parts.push_back(rest.substr(at, next == std::string::npos ? std::string::npos : next - at));
        if (next == std::string::npos) break;
        at = next + sep.size();
    }
    parts.resize(5);
    std::optional<d2v::text::BpeTokenizer> tok;
    fuzz::expect_only_d2v_errors(
        [&] { tok.emplace(parse_or_null(parts[0]), parts[1], parse_or_null(parts[2]), parse_or_null(parts[3])); });
    if (tok) exercise(*tok, parts[4], parts[4].substr(parts[4].size() / 2));
    return 0;
}
