using System.Linq.Expressions;
using System.Reflection;

namespace Moldau.Broker.Quotas;

/// <summary>
/// The throttle_time_ms field of a response type, read and written without knowing the type: the
/// generated response's <c>ThrottleTimeMs</c>, or that of the <c>Response</c> a pooled reply wraps
/// (Produce, Fetch). Null for a response without one. Built once per type.
/// </summary>
/// <typeparam name="T">The response type a handler returns.</typeparam>
internal static class ThrottleField<T>
{
    /// <summary>Reads the field, or null when the type has none.</summary>
    public static readonly Func<T, int>? Get;

    /// <summary>Writes the field, or null when the type has none.</summary>
    public static readonly Action<T, int>? Set;

    static ThrottleField()
    {
        var message = Expression.Parameter(typeof(T), "message");
        Expression? owner = message;
        var field = Find(typeof(T));
        if (field is null && typeof(T).GetProperty("Response", BindingFlags.Public | BindingFlags.Instance) is { } wrapped)
        {
            owner = Expression.Property(message, wrapped);
            field = Find(wrapped.PropertyType);
        }

        if (field is null)
        {
            return;
        }

        var value = Expression.Parameter(typeof(int), "value");
        var property = Expression.Property(owner, field);
        Get = Expression.Lambda<Func<T, int>>(property, message).Compile();
        Set = Expression.Lambda<Action<T, int>>(Expression.Assign(property, value), message, value).Compile();
    }

    private static PropertyInfo? Find(Type type) =>
        type.GetProperty("ThrottleTimeMs", BindingFlags.Public | BindingFlags.Instance) is { PropertyType: var t, CanWrite: true } p && t == typeof(int) ? p : null;
}
