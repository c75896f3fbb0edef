//! `cli groups`: list groups; describe one with its members, assignments, offsets and lag.

use std::collections::{BTreeMap, HashMap};

use kafka_client::cluster::OffsetSpec;

use crate::args::{Args, UsageError};
use crate::{admin, Failure, Global};

pub async fn groups(global: &Global, mut args: Args) -> Result<i32, Failure> {
    let action = args.required("groups action (list, describe)")?;
    let admin = admin(global).await?;
    match action.as_str() {
        "list" => {
            for g in admin.list_groups().await? {
                println!("{}\t{}\t{}", g.group_id, g.state, g.protocol_type);
            }
        }
        "describe" => {
            let group = args.required("GROUP")?;
            let description = admin.describe_group(&group).await?;
            println!(
                "Group: {}\tState: {}\tProtocol: {}\tMembers: {}",
                description.group_id,
                description.state,
                description.protocol,
                description.members.len()
            );
            let mut owner = BTreeMap::new();
            for m in &description.members {
                let partitions: Vec<String> =
                    m.assignment.iter().map(ToString::to_string).collect();
                println!(
                    "\tMember: {}\tClient: {}\tHost: {}\tPartitions: {}",
                    m.member_id,
                    m.client_id,
                    m.client_host,
                    partitions.join(",")
                );
                for tp in &m.assignment {
                    owner.insert(tp.clone(), m.member_id.clone());
                }
            }
            let committed = admin.list_group_offsets(&group).await?;
            let ends: HashMap<_, _> = if committed.is_empty() {
                HashMap::new()
            } else {
                admin
                    .list_offsets(
                        committed
                            .keys()
                            .map(|tp| (tp.clone(), OffsetSpec::Latest))
                            .collect(),
                    )
                    .await?
            };
            println!("\tTOPIC-PARTITION\tCOMMITTED\tEND\tLAG\tOWNER");
            for (tp, offset) in &committed {
                let end = ends.get(tp).and_then(|o| o.offset);
                let lag = end.map_or("?".to_owned(), |e| (e - offset).max(0).to_string());
                println!(
                    "\t{tp}\t{offset}\t{}\t{lag}\t{}",
                    end.map_or("?".to_owned(), |e| e.to_string()),
                    owner.get(tp).map_or("-", String::as_str)
                );
            }
        }
        other => return Err(UsageError(format!("unknown groups action {other:?}")).into()),
    }
    Ok(0)
}
