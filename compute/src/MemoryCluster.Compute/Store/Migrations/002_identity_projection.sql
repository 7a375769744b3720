-- Identity components inside PostgreSQL (seed 000's ladder, first rung: PL/pgSQL kept by triggers): SQL users get
-- "which names are one identity" without the compute tier, which stays the fast path (docs/compute.md).
-- A component is a connected set of entities over current entity triples whose predicate is an identity
-- predicate, links taken in both directions; it is named by its smallest member. Entities in no link are their
-- own component and have no row.

create table identity_predicates (predicate text primary key);
insert into identity_predicates (predicate) values ('sameAs');

create table identity_components (
    entity text primary key,
    component text not null
);
create index identity_components_component on identity_components (component);

-- The component of an entity (itself when it is linked to nothing).
create function identity_component_of(name text) returns text language sql stable as $$
    select coalesce((select component from identity_components where entity = name), name)
$$;

-- Every entity reachable from start over current identity links.
create function identity_reach(start text) returns setof text language sql stable as $$
    with recursive reach(node) as (
        select start
        union
        select case when t.subject = r.node then t.object else t.subject end
        from reach r
        join triples t on (t.subject = r.node or t.object = r.node)
        where t.object_kind = 'entity' and t.valid_to is null
          and t.predicate in (select predicate from identity_predicates)
    )
    select node from reach
$$;

-- Finds the components of these entities again from the links (none of them has a row when it is called).
create function identity_assign(members text[]) returns void language plpgsql as $$
declare
    member text;
    part text[];
begin
    foreach member in array members loop
        if exists (select 1 from identity_components where entity = member) then
            continue;
        end if;
        select array_agg(n order by n) into part from identity_reach(member) n;
        if array_length(part, 1) > 1 then
            insert into identity_components (entity, component)
            select n, part[1] from unnest(part) n
            on conflict (entity) do update set component = excluded.component;
        end if;
    end loop;
end $$;

-- Recomputes the components of what was one component (after a link left it): each part is found again.
create function identity_split(old_component text) returns void language plpgsql as $$
declare
    members text[];
begin
    select array_agg(entity) into members from identity_components where component = old_component;
    if members is not null then
        delete from identity_components where component = old_component;
        perform identity_assign(members);
    end if;
end $$;

-- Recomputes every component (after identity_predicates changed, say).
create function identity_rebuild() returns void language plpgsql as $$
declare
    linked text[];
begin
    truncate identity_components;
    select array_agg(distinct e) into linked from (
        select subject as e from triples where object_kind = 'entity' and valid_to is null and predicate in (select predicate from identity_predicates)
        union all
        select object from triples where object_kind = 'entity' and valid_to is null and predicate in (select predicate from identity_predicates)
    ) l;
    if linked is not null then
        perform identity_assign(linked);
    end if;
end $$;

create function identity_maintain() returns trigger language plpgsql as $$
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
    if is_link then
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

create trigger triples_identity after insert or update or delete on triples for each row execute function identity_maintain();
create function identity_truncate() returns trigger language plpgsql as $$
begin
    truncate identity_components;
    return null;
end $$;
create trigger triples_identity_truncate after truncate on triples for each statement execute function identity_truncate();

-- The links already stored when this migration runs.
select identity_rebuild();
