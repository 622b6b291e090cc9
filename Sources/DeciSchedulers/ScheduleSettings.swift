/// The settings every scheduler reads from its config the same way: the training noise schedule,
/// what the model predicts, and how inference timesteps are spaced and offset. Each scheduler
/// names only its own defaults (diffusers' constructor defaults differ per class).
public struct ScheduleSettings: Sendable, Equatable {
    /// The training noise schedule (betas, alphas_cumprod).
    public let schedule: NoiseSchedule
    /// `prediction_type` (default epsilon in every diffusers scheduler).
    public let predictionType: PredictionType
    /// `timestep_spacing`.
    public let timestepSpacing: TimestepSpacing
    /// `steps_offset` (default 0).
    public let stepsOffset: Int

    init(config: SchedulerConfig, betaStart: Double = 0.0001, betaEnd: Double = 0.02, betaSchedule: BetaSchedule = .linear,
         zeroSNR: NoiseSchedule.ZeroSNROption, spacing: TimestepSpacing) throws(SchedulerError) {
        schedule = try NoiseSchedule(config: config, betaStart: betaStart, betaEnd: betaEnd, betaSchedule: betaSchedule,
                                     zeroSNR: zeroSNR)
        predictionType = config.predictionType ?? .epsilon
        timestepSpacing = config.timestepSpacing ?? spacing
        stepsOffset = config.stepsOffset ?? 0
    }
}
