from rapport.core.errors import Conflict, NotFound, ValidationFailed


class DealNotFound(NotFound):
    code = "deal_not_found"
    message = "Deal not found."


class PipelineNotFound(NotFound):
    code = "pipeline_not_found"
    message = "Pipeline not found."


class StageNotFound(NotFound):
    code = "stage_not_found"
    message = "Stage not found."


class StageNameTaken(Conflict):
    code = "stage_name_taken"
    message = "The pipeline already has a stage with this name."


class StageInUse(Conflict):
    code = "stage_in_use"
    message = "Deals are in this stage; move or erase them first."


class PipelineInUse(Conflict):
    code = "pipeline_in_use"
    message = "Deals are in this pipeline; move or erase them first."


class TooManyStages(ValidationFailed):
    code = "too_many_stages"
    message = "A pipeline has at most 50 stages."


class InvalidStageOrder(ValidationFailed):
    code = "invalid_stage_order"
    message = "stage_ids must list each of the pipeline's stages exactly once."


class StageNotInPipeline(ValidationFailed):
    code = "stage_not_in_pipeline"
    message = "The stage does not belong to the deal's pipeline."


class PipelineHasNoStages(ValidationFailed):
    code = "pipeline_has_no_stages"
    message = "The pipeline has no stages; add one first."


class StatusConflictsWithStage(ValidationFailed):
    code = "status_conflicts_with_stage"
    message = "The status does not match the stage (won and lost stages set the status)."
