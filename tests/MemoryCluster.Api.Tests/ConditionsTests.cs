using MemoryCluster.Api.Meta;

namespace MemoryCluster.Api.Tests;

public sealed class ConditionsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static Condition Ready(string status, string reason = ConditionReasons.AllInstancesReady) => new()
    {
        Type = ConditionTypes.Ready,
        Status = status,
        Reason = reason,
        Message = "m",
        LastTransitionTime = DateTimeOffset.MinValue,
        ObservedGeneration = 1,
    };

    [Fact]
    public void New_condition_gets_the_current_time_as_its_transition()
    {
        var list = Conditions.Set(null, Ready(ConditionStatus.True), T0);
        Assert.Equal(T0, Assert.Single(list).LastTransitionTime);
    }

    [Fact]
    public void Transition_time_stays_when_the_status_does_not_change()
    {
        var list = Conditions.Set(null, Ready(ConditionStatus.True), T0);
        list = Conditions.Set(list, Ready(ConditionStatus.True, ConditionReasons.UpToDate) with { Message = "other" }, T0.AddMinutes(5));
        var condition = Assert.Single(list);
        Assert.Equal(T0, condition.LastTransitionTime);
        Assert.Equal(ConditionReasons.UpToDate, condition.Reason);
        Assert.Equal("other", condition.Message);
    }

    [Fact]
    public void Transition_time_moves_when_the_status_flips()
    {
        var list = Conditions.Set(null, Ready(ConditionStatus.True), T0);
        list = Conditions.Set(list, Ready(ConditionStatus.False, ConditionReasons.InstancesNotReady), T0.AddMinutes(5));
        Assert.Equal(T0.AddMinutes(5), Assert.Single(list).LastTransitionTime);
    }

    [Fact]
    public void Other_conditions_are_left_as_they_were()
    {
        var degraded = Ready(ConditionStatus.False) with { Type = ConditionTypes.Degraded, LastTransitionTime = T0 };
        var list = Conditions.Set([degraded], Ready(ConditionStatus.True), T0.AddHours(1));
        Assert.Equal(2, list.Count);
        Assert.Equal(degraded, Conditions.Find(list, ConditionTypes.Degraded));
    }
}
