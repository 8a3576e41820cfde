"""Learner bugs for phase 01's labs (see tools/mutate_labs.py for the format)."""

MUTANTS = [
    dict(lab="lab-05-stop-conditions", name="length-before-eos",
         desc="checks the length cap before EOS, so an EOS on the last allowed token reports 'length'",
         find="""    if not params.ignore_eos and request.eos_token_id is not None and last == request.eos_token_id:
        request.status = RequestStatus.FINISHED_STOPPED
        return True""",
         replace="""    if request.num_output_tokens >= params.max_tokens:
        request.status = RequestStatus.FINISHED_LENGTH
        return True
    if not params.ignore_eos and request.eos_token_id is not None and last == request.eos_token_id:
        request.status = RequestStatus.FINISHED_STOPPED
        return True"""),
    dict(lab="lab-05-stop-conditions", name="ignore-eos-ignored",
         desc="stops on EOS even when ignore_eos is set",
         find="if not params.ignore_eos and request.eos_token_id",
         replace="if request.eos_token_id"),
    dict(lab="lab-05-stop-conditions", name="max-tokens-off-by-one",
         desc="stops one token late: '>' instead of '>=' against max_tokens",
         find="request.num_output_tokens >= params.max_tokens",
         replace="request.num_output_tokens > params.max_tokens"),
    dict(lab="lab-05-stop-conditions", name="no-stop-reason",
         desc="finishes on a stop token id without recording which one in stop_reason",
         find="        request.stop_reason = last\n",
         replace=""),
    dict(lab="lab-05-stop-conditions", name="model-len-ignored",
         desc="forgets the max_model_len cap",
         find="max_model_len is not None and request.num_tokens >= max_model_len",
         replace="False"),
]
