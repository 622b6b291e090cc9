// Config checks shared by the sigma-based schedulers: options diffusers offers that this module does
// not implement are refused by name rather than silently ignored.

func refuseUnsupportedSigmaOptions(_ config: SchedulerConfig, scheduler: String) throws(SchedulerError) {
    if config.useExponentialSigmas == true { throw .unsupportedOption(scheduler: scheduler, option: "use_exponential_sigmas") }
    if config.useBetaSigmas == true { throw .unsupportedOption(scheduler: scheduler, option: "use_beta_sigmas") }
    if config.useFlowSigmas == true { throw .unsupportedOption(scheduler: scheduler, option: "use_flow_sigmas") }
    if config.useLuLambdas == true { throw .unsupportedOption(scheduler: scheduler, option: "use_lu_lambdas") }
}
