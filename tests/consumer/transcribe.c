/* The C consumer: the same as transcribe.cpp through d2v/d2v.h. */
#include <stdio.h>

#include "d2v/d2v.h"

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf FILE...  (data2vec.cpp %s)\n", argv[0], d2v_version());
        return 2;
    }
    d2v_model* model = NULL;
    if (d2v_model_load(argv[1], &model) != D2V_OK) {
        fprintf(stderr, "%s: error: %s\n", argv[0], d2v_last_error());
        return 1;
    }
    d2v_result* result = NULL;
    const d2v_audio_params params = d2v_audio_default_params();
    if (d2v_run_audio_files(model, (const char* const*)(argv + 2), (size_t)(argc - 2), &params, &result) != D2V_OK) {
        fprintf(stderr, "%s: error: %s\n", argv[0], d2v_last_error());
        d2v_model_free(model);
        return 1;
    }
    for (size_t i = 0; i < d2v_result_num_items(result); ++i) {
        d2v_item item;
        d2v_result_item(result, i, &item);
        printf("%s: %s\n", argv[2 + i], item.text);
    }
    d2v_result_free(result);
    d2v_model_free(model);
    return 0;
}
