// Aliases+Pipeline: names for Pipeline's domain types that share a name with the wire (Protocol) types.
import Pipeline

typealias PipelineFileChange = FileChange
typealias PipelineRole = Role
typealias PipelineStatus = ProposalStatus
typealias PipelineVerdict = Verdict
