-- A self-link ('x sameAs x') joins nothing: x stays a component of its own, with no row, as identity_rebuild()
-- leaves it. Before, the trigger kept a row 'x = x' for it that a rebuild did not make. Rows already kept that way
-- go now, by a rebuild.
create or replace function identity_maintain() returns trigger language plpgsql as $$
declare
    was_link boolean := tg_op in ('UPDATE', 'DELETE') and old.object_kind = 'entity' and old.valid_to is null
        and old.predicate in (select predicate from identity_predicates);
    is_link boolean := tg_op in ('INSERT', 'UPDATE') and new.object_kind = 'entity' and new.valid_to is null
        and new.predicate in (select predicate from identity_predicates);
    a text;
    b text;
    joined text;
begin
    if not was_link and not is_link then
        return null;
    end if;
    -- One identity change at a time: a merge reads the components it joins.
    perform pg_advisory_xact_lock(8675309001);
    if was_link then
        perform identity_split(identity_component_of(old.subject));
    end if;
    if is_link and new.subject <> new.object then
        a := identity_component_of(new.subject);
        b := identity_component_of(new.object);
        if a <> b then
            joined := least(a, b);
            update identity_components set component = joined where component in (a, b);
        else
            joined := a;
        end if;
        insert into identity_components (entity, component)
        select distinct e, joined from unnest(array[new.subject, new.object]) e
        on conflict (entity) do update set component = excluded.component;
    end if;
    return null;
end $$;

select identity_rebuild();
