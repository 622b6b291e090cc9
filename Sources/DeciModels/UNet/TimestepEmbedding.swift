// diffusers `Timesteps` + `TimestepEmbedding` (embeddings.py). Activations are NHWC; property names are the checkpoint keys.
import DeciTensor
import DeciWeights

/// diffusers `Timesteps` + `TimestepEmbedding`: sinusoidal projection of the timestep, then
/// linear_1, SiLU, linear_2.
public final class TimestepEmbedding: @unchecked Sendable {
    public let projectionChannels: Int
    let flipSinToCos: Bool
    let freqShift: Float
    let linear_1: Linear
    let linear_2: Linear

    public init(_ w: WeightScope, projectionChannels: Int, embeddingChannels: Int, flipSinToCos: Bool = true, freqShift: Float = 0,
                precision: Precision) throws(ModelError) {
        self.projectionChannels = projectionChannels
        self.flipSinToCos = flipSinToCos
        self.freqShift = freqShift
        linear_1 = try w.linear("linear_1", in: projectionChannels, out: embeddingChannels, precision: precision)
        linear_2 = try w.linear("linear_2", in: embeddingChannels, out: embeddingChannels, precision: precision)
    }

    /// The sinusoidal features of `timesteps` as diffusers' `get_timestep_embedding` computes them
    /// in float32: `[cos, sin]` halves when flipped.
    public func sinusoidal(_ timesteps: [Float]) -> Tensor {
        Ops.timestepEmbedding(timesteps, channels: projectionChannels, flipSinToCos: flipSinToCos, freqShift: freqShift)
    }

    /// Time embedding `[n, embeddingChannels]` for one timestep per batch element.
    public func callAsFunction(_ timesteps: [Float]) -> Tensor {
        linear_2(linear_1(sinusoidal(timesteps), activation: .silu))
    }
}
